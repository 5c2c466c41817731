// learnmesh's bytes, from PROTOCOL.md: accounts (§2), the genesis and the
// network id (§3, §11.1), events, their signatures and ids (§4), the gossip
// envelope (§11.3) and the sync frames (§11.4, §11.5).
//
// Ed25519 and SHA-256 are Node's own crypto (OpenSSL), not the libraries
// libp2p or the Python node use.

import crypto from 'node:crypto'
import { encode, decode, CanonError, isMap, compareBytes } from './canon.mjs'

export { CanonError }

const ascii = (s) => new TextEncoder().encode(s)
export const sha256 = (...parts) => {
  const h = crypto.createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}
export const hex = (b) => Buffer.from(b).toString('hex')
export const unhex = (s) => new Uint8Array(Buffer.from(s, 'hex'))
const concat = (...bs) => new Uint8Array(Buffer.concat(bs.map((b) => Buffer.from(b))))
const eq = (a, b) => a.length === b.length && compareBytes(a, b) === 0

export class ProtocolError extends Error {
  constructor (code, reason) {
    super(`${code}: ${reason}`)
    this.code = code
  }
}

// -- §2 accounts ---------------------------------------------------------------------

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

function base32 (bytes) {
  let bits = 0; let value = 0; let out = ''
  for (const b of bytes) {
    value = (value << 8) | b; bits += 8
    while (bits >= 5) { out += B32[(value >>> (bits - 5)) & 31]; bits -= 5 }
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31]
  return out
}

function unbase32 (text) {
  let bits = 0; let value = 0; const out = []
  for (const c of text) {
    const i = B32.indexOf(c)
    if (i < 0) throw new ProtocolError('account', `bad base32 character ${JSON.stringify(c)}`)
    value = (value << 5) | i; bits += 5
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 0xff); bits -= 8 }
  }
  return Uint8Array.from(out)
}

const accountCheck = (pk) => sha256(ascii('learnmesh/account\x00'), pk).slice(0, 3)

export function accountText (pk) {
  return 'lm' + base32(concat(pk, accountCheck(pk)))
}

export function parseAccount (text) {
  const t = String(text).trim()
  if (!t.startsWith('lm')) throw new ProtocolError('account', `${JSON.stringify(t)} does not start with "lm"`)
  const b = unbase32(t.slice(2))
  if (b.length !== 35) throw new ProtocolError('account', `${JSON.stringify(t)} decodes to ${b.length} bytes, not 35`)
  const pk = b.slice(0, 32)
  if (!eq(b.slice(32), accountCheck(pk))) throw new ProtocolError('account', `${JSON.stringify(t)} has a bad checksum`)
  return pk
}

// -- §3 and §11.1 genesis ------------------------------------------------------------

export const PARAM_DEFAULTS = {
  max_event_bytes: 32768,
  max_blob_bytes: 8388608,
  min_quorum: 1,
  max_clock_skew_ms: 600000,
  honest_review_tolerance_pm: 150,
  points_awarded_work: 10,
  points_honest_review: 2,
  points_settled_bounty: 1,
  penalty_abandoned_bounty: 5
}

/** genesis.json (already parsed) -> { bytes, networkId, params, genesis } */
export function genesisFromJson (j) {
  const fail = (why) => { throw new ProtocolError('genesis', why) }
  if (!isMap(j)) fail('genesis.json is not an object')
  for (const k of ['name', 'created_ms', 'allocations']) if (!(k in j)) fail(`genesis.json has no ${k}`)
  if (typeof j.name !== 'string') fail('name is not a string')
  if (!Number.isInteger(j.created_ms)) fail('created_ms is not an integer')
  const allocations = Object.entries(j.allocations).map(([acct, amount]) => {
    if (!Number.isInteger(amount) || amount <= 0) fail(`allocation of ${acct} is not a positive integer`)
    return [parseAccount(acct), amount]
  }).sort((a, b) => compareBytes(a[0], b[0]))
  const trusted = (j.trusted ?? []).map(parseAccount).sort(compareBytes)
  const params = { ...PARAM_DEFAULTS }
  for (const [k, v] of Object.entries(j.params ?? {})) {
    if (!(k in PARAM_DEFAULTS)) fail(`unknown parameter ${k}`)
    if (!Number.isInteger(v) || v < 0) fail(`parameter ${k} is not a non-negative integer`)
    params[k] = v
  }
  const genesis = {
    v: 1,
    name: j.name,
    description: j.description ?? '',
    created_ms: j.created_ms,
    allocations,
    trusted,
    params
  }
  const bytes = encode(genesis)
  return { genesis, bytes, params, networkId: sha256(ascii('learnmesh/genesis\x00'), bytes) }
}

// -- §11.2 names ---------------------------------------------------------------------

export function names (networkId) {
  const h = hex(networkId)
  return {
    topic: `/learnmesh/${h}/events/1`,
    sync: `/learnmesh/${h.slice(0, 32)}/sync/1.0.0`,
    blob: `/learnmesh/${h.slice(0, 32)}/blob/1.0.0`
  }
}

// -- Ed25519 with Node's crypto ------------------------------------------------------

const SPKI_ED25519 = unhex('302a300506032b6570032100')
const PKCS8_ED25519 = unhex('302e020100300506032b657004220420')

export function keyFromSeed (seed) {
  if (seed.length !== 32) throw new Error('an Ed25519 seed is 32 bytes')
  const priv = crypto.createPrivateKey({ key: Buffer.from(concat(PKCS8_ED25519, seed)), format: 'der', type: 'pkcs8' })
  const spki = crypto.createPublicKey(priv).export({ format: 'der', type: 'spki' })
  return { priv, publicKey: new Uint8Array(spki.subarray(spki.length - 32)) }
}

export function verifyEd25519 (pk, message, signature) {
  try {
    const key = crypto.createPublicKey({ key: Buffer.from(concat(SPKI_ED25519, pk)), format: 'der', type: 'spki' })
    return crypto.verify(null, message, key, signature)
  } catch {
    return false // not a point on the curve
  }
}

// -- §4 events -----------------------------------------------------------------------

export const KINDS = {
  profile: 1, bounty: 2, commit: 3, close: 4, reveal: 5, review: 6, award: 7, refund: 8, transfer: 9, vouch: 10, credential: 11
}
const KIND_MAX_BYTES = { 1: 2048, 2: 16384, 3: 1024, 4: 16384, 5: 24576, 6: 4096, 7: 32768, 8: 1024, 9: 4096, 10: 1024, 11: 1024 }
const DOMAIN_EVENT = ascii('learnmesh/event/v1\x00')
const isInt = (x) => (typeof x === 'number' && Number.isInteger(x)) || typeof x === 'bigint'
const isBin = (x, n) => x instanceof Uint8Array && (n === undefined || x.length === n)

/** Sign an event (§4.2): encode with 64 zero bytes as the signature, sign
 * the domain prefix and everything before the last 66 bytes, put the
 * signature in. Returns { raw, id }. */
export function signEvent (key, { network, seq, prev, timestamp, kind, body, refs = [] }) {
  const fields = [1, network, key.publicKey, seq, prev ?? null, timestamp, KINDS[kind] ?? kind, body, refs, new Uint8Array(64)]
  const raw = encode(fields)
  const sig = crypto.sign(null, concat(DOMAIN_EVENT, raw.subarray(0, raw.length - 66)), key.priv)
  raw.set(sig, raw.length - 64)
  return { raw, id: sha256(raw) }
}

/** Decode and check one event for this network (§4.1 order, the kind
 * schemas of §5 excepted: this peer checks shape, size and signature).
 * Returns { id, author, seq, prev, timestamp, kind, body, refs }. */
export function decodeEvent (raw, networkId, maxEventBytes) {
  const no = (code, why) => { throw new ProtocolError(code, why) }
  if (!(raw instanceof Uint8Array)) no('field', 'an event is bytes')
  if (raw.length > maxEventBytes) no('oversize', `${raw.length} bytes > max_event_bytes ${maxEventBytes}`)
  const f = decode(raw)
  if (!Array.isArray(f) || f.length !== 10) no('shape', 'not an array of 10')
  const [version, network, author, seq, prev, timestamp, kind, body, refs, signature] = f
  if (version !== 1) no('version', `version ${version}`)
  if (!isBin(network, 32)) no('field', 'network is not bin32')
  if (!eq(network, networkId)) no('wrong_network', 'another network')
  if (!isBin(author, 32)) no('field', 'author is not bin32')
  if (!isInt(seq) || seq < 1 || BigInt(seq) >= 2n ** 63n) no('field', 'bad seq')
  if (seq === 1 ? prev !== null : !isBin(prev, 32)) no('prev', 'prev does not match seq')
  if (!isInt(timestamp) || timestamp < 0 || timestamp > 2 ** 48 - 1) no('field', 'bad timestamp')
  if (!isInt(kind) || !(kind in KIND_MAX_BYTES)) no('unknown_kind', `kind ${kind}`)
  if (raw.length > KIND_MAX_BYTES[kind]) no('oversize', `${raw.length} bytes > the kind's ${KIND_MAX_BYTES[kind]}`)
  if (!Array.isArray(refs) || refs.length > 512 || !refs.every((r) => isBin(r, 32))) no('refs', 'refs are not ≤ 512 bin32')
  for (let i = 1; i < refs.length; i++) if (compareBytes(refs[i - 1], refs[i]) >= 0) no('refs', 'refs not strictly increasing')
  if (!isBin(signature, 64)) no('field', 'signature is not bin64')
  if (!isMap(body)) no('body', 'body is not a map')
  if (!verifyEd25519(author, concat(DOMAIN_EVENT, raw.subarray(0, raw.length - 66)), signature)) no('bad_signature', 'the signature does not verify')
  return { id: sha256(raw), author, seq, prev, timestamp, kind, body, refs }
}

// -- §11.3 gossip envelope -----------------------------------------------------------

export const MAX_GOSSIP_BYTES = 262144

export function encodeEnvelope (networkId, raws) {
  return encode(['lmg', 1, networkId, raws])
}

/** The envelope's raw events; throws CanonError/ProtocolError (`gossip`, `wrong_network`). */
export function decodeEnvelope (data, networkId) {
  const v = decode(data, MAX_GOSSIP_BYTES)
  const no = (why) => { throw new ProtocolError('gossip', why) }
  if (!Array.isArray(v) || v.length !== 4) no('not an array of four')
  if (v[0] !== 'lmg') no('not "lmg"')
  if (v[1] !== 1) no(`version ${v[1]}`)
  if (!isBin(v[2], 32)) no('network id is not bin32')
  if (!eq(v[2], networkId)) throw new ProtocolError('wrong_network', 'another network')
  if (!Array.isArray(v[3]) || v[3].length === 0 || !v[3].every((x) => isBin(x))) no('events are not a non-empty array of bin')
  return v[3]
}

/** The message id every node uses (§11.3): sha256(data). */
export const messageId = (data) => sha256(data)

// -- §11.4, §11.5 sync frames --------------------------------------------------------

export const SYNC_ANSWER_MAX = 2097152

export function frame (msg) {
  const body = encode({ ...msg, v: 1 })
  const out = new Uint8Array(4 + body.length)
  new DataView(out.buffer).setUint32(0, body.length)
  out.set(body, 4)
  return out
}

/** Check a decoded answer's shape (§11.4). */
export function checkAnswer (bytes) {
  const m = decode(bytes, SYNC_ANSWER_MAX)
  if (!isMap(m)) throw new ProtocolError('sync', 'an answer that is not a map')
  if (m.v !== 1) throw new ProtocolError('sync', `v is ${m.v}`)
  if (m.t !== 'reply' && m.t !== 'error') throw new ProtocolError('sync', `answer type ${m.t}`)
  return m
}
