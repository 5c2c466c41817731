import fs from 'fs';
import jsigs from 'jsonld-signatures';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
const {purposes: {AssertionProofPurpose}} = jsigs;
const contexts = {
  'https://www.w3.org/ns/credentials/v2': JSON.parse(fs.readFileSync('/work/main/node/contexts/credentials-v2.jsonld')),
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json': JSON.parse(fs.readFileSync('/work/main/node/contexts/ob-context-3.0.3.json')),
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
  id: 'urn:uuid:2fe53dc9-b2ec-4939-9b2c-0d00f6663b6c',
  type: ['VerifiableCredential', 'OpenBadgeCredential'],
  issuer: {id: did, type: ['Profile'], name: 'Elsewhere Academy'},
  validFrom: '2024-05-01T12:00:00Z',
  name: 'Data Structures',
  credentialSubject: {id: 'did:example:learner', type: ['AchievementSubject'],
    achievement: {id: 'https://elsewhere.example/ach/ds', type: ['Achievement'], name: 'Data Structures',
      description: 'Completed the data structures course.', criteria: {narrative: 'Pass all labs.'}}},
};
const suite = new DataIntegrityProof({signer: key.signer(), cryptosuite: eddsaRdfc2022CryptoSuite});
const signed = await jsigs.sign(cred, {suite, purpose: new AssertionProofPurpose(), documentLoader});
fs.writeFileSync(process.argv[2], JSON.stringify(signed, null, 2));
