import fs from 'fs';
import jsigs from 'jsonld-signatures';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
const {purposes: {AssertionProofPurpose}} = jsigs;
const C = '/work/main/node/contexts/';
const contexts = {
  'https://www.w3.org/2018/credentials/v1': JSON.parse(fs.readFileSync(C + 'credentials-v1.jsonld')),
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json': JSON.parse(fs.readFileSync(C + 'ob-context-3.0.2.json')),
  'https://w3id.org/security/data-integrity/v2': JSON.parse(fs.readFileSync(C + 'data-integrity-v2.jsonld')),
};
const documentLoader = async url => {
  if (contexts[url]) return {contextUrl: null, documentUrl: url, document: contexts[url]};
  throw new Error('refused ' + url);
};
const key = await Ed25519Multikey.generate();
const did = 'did:key:' + key.publicKeyMultibase;
key.id = did + '#' + key.publicKeyMultibase; key.controller = did;
const cred = {
  '@context': Object.keys(contexts),
  id: 'urn:uuid:0c1c8b4e-3a5f-4d0e-9d6c-7a0c2b1f9e11',
  type: ['VerifiableCredential', 'OpenBadgeCredential'],
  issuer: {id: did, type: ['Profile'], name: 'Older Academy'},
  issuanceDate: '2023-03-01T09:00:00Z',
  name: 'Algorithms I',
  credentialSubject: {id: 'did:example:learner2', type: ['AchievementSubject'],
    achievement: {id: 'https://older.example/ach/algo1', type: ['Achievement'], name: 'Algorithms I',
      description: 'Sorting, searching and graphs.', criteria: {narrative: 'Pass the final exam.'}}},
};
const suite = new DataIntegrityProof({signer: key.signer(), cryptosuite: eddsaRdfc2022CryptoSuite});
const signed = await jsigs.sign(cred, {suite, purpose: new AssertionProofPurpose(), documentLoader});
fs.writeFileSync(process.argv[2], JSON.stringify(signed, null, 2));
