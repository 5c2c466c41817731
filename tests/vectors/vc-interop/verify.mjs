import fs from 'fs';
import jsonld from 'jsonld';
import jsigs from 'jsonld-signatures';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import {cryptosuite as eddsaRdfc2022CryptoSuite} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import {driver} from '@digitalbazaar/did-method-key';

const {purposes: {AssertionProofPurpose}} = jsigs;
const didKeyDriver = driver();
didKeyDriver.use({multibaseMultikeyHeader: 'z6Mk', fromMultibase: Ed25519Multikey.from});

const contexts = {
  'https://www.w3.org/ns/credentials/v2': JSON.parse(fs.readFileSync('/work/main/node/contexts/credentials-v2.jsonld')),
  'https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json': JSON.parse(fs.readFileSync('/work/main/node/contexts/ob-context-3.0.3.json')),
};
const documentLoader = async url => {
  if (contexts[url]) return {contextUrl: null, documentUrl: url, document: contexts[url]};
  if (url.startsWith('did:key:')) {
    const document = await didKeyDriver.get({url});
    return {contextUrl: null, documentUrl: url, document};
  }
  throw new Error('refused ' + url);
};
const doc = JSON.parse(fs.readFileSync(process.argv[2]));
const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022CryptoSuite});
const result = await jsigs.verify(doc, {suite, purpose: new AssertionProofPurpose(), documentLoader, safe: true});
console.log(JSON.stringify({verified: result.verified, error: result.error ? String(result.error) + ' ' + JSON.stringify(result.error.errors?.map(e => e.message)) : null}));
// also: safe-mode canonicalisation must not throw (no undefined terms)
const {proof, ...unsecured} = doc;
const nq = await jsonld.canonize(unsecured, {algorithm: 'RDFC-1.0', format: 'application/n-quads', documentLoader, safe: true});
fs.writeFileSync(process.argv[2] + '.js.nq', nq);
