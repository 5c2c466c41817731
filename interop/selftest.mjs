// Check this peer's bytes against the reference vectors:
//   node interop/selftest.mjs [tests/vectors]
// Prints one JSON line {"selftest": "ok", "checks": N} or exits 1 naming the
// first vector it disagrees with.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  accountText, parseAccount, genesisFromJson, names, keyFromSeed, signEvent, decodeEvent,
  decodeEnvelope, encodeEnvelope, messageId, frame, hex, unhex, CanonError, ProtocolError
} from './lm.mjs'
import { encode, decode } from './canon.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const dir = process.argv[2] ?? path.join(here, '..', 'tests', 'vectors')
const wire = JSON.parse(fs.readFileSync(path.join(dir, 'wire.json'), 'utf8'))
const ev = JSON.parse(fs.readFileSync(path.join(dir, 'events.json'), 'utf8'))

let checks = 0
function same (what, got, want) {
  checks++
  if (got !== want) {
    console.error(`selftest: ${what}: got ${got}, want ${want}`)
    process.exit(1)
  }
}
function codeOf (f) {
  try { f(); return 'ok' } catch (e) {
    if (e instanceof CanonError || e instanceof ProtocolError) return e.code
    throw e
  }
}
// {"bin": hex} in the vectors is bytes
const fromVec = (v) => {
  if (Array.isArray(v)) return v.map(fromVec)
  if (v !== null && typeof v === 'object') {
    if (Object.keys(v).length === 1 && typeof v.bin === 'string') return unhex(v.bin)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromVec(x)]))
  }
  return v
}

// §2, §3, §11.1
for (const k of ev.keys) {
  same(`account of ${k.name}`, accountText(unhex(k.public_key)), k.account)
  same(`parse account of ${k.name}`, hex(parseAccount(`  ${k.account}\n`)), k.public_key)
  same(`public key of ${k.name}`, hex(keyFromSeed(unhex(k.seed)).publicKey), k.public_key)
}
same('bad checksum refused', codeOf(() => parseAccount(ev.keys[0].account.slice(0, -1) + 'a')), 'account')
const g = genesisFromJson(wire.genesis.json)
same('genesis bytes', hex(g.bytes), wire.genesis.canonical)
same('network id', hex(g.networkId), wire.genesis.network_id)
const gm = genesisFromJson(wire.genesis.minimal_json)
same('minimal genesis bytes', hex(gm.bytes), wire.genesis.minimal_canonical)
same('minimal network id', hex(gm.networkId), wire.genesis.minimal_network_id)
const n = names(g.networkId)
same('topic', n.topic, wire.names.gossip_topic)
same('sync protocol', n.sync, wire.names.sync_protocol)
same('blob protocol', n.blob, wire.names.blob_protocol)

// §4: every valid event decodes, verifies and has its id; re-signing gives the same bytes
const ge = genesisFromJson(ev.genesis.json)
const keys = Object.fromEntries(ev.keys.map((k) => [k.name, keyFromSeed(unhex(k.seed))]))
for (const e of ev.events) {
  const d = decodeEvent(unhex(e.raw), ge.networkId, ge.params.max_event_bytes)
  same(`event ${e.id.slice(0, 8)} id`, hex(d.id), e.id)
  const again = signEvent(keys[e.author], { network: ge.networkId, seq: d.seq, prev: d.prev, timestamp: d.timestamp, kind: d.kind, body: d.body, refs: d.refs })
  same(`event ${e.id.slice(0, 8)} re-signed`, hex(again.raw), e.raw)
}
for (const e of ev.invalid) {
  // this peer checks shape, size and signature, not the kind schemas (§5)
  const code = codeOf(() => decodeEvent(unhex(e.raw), ge.networkId, ge.params.max_event_bytes))
  if (['bad_signature', 'wrong_network', 'prev', 'non_canonical', 'trailing_bytes', 'shape', 'version', 'unknown_kind', 'oversize', 'undecodable'].includes(e.code)) {
    same(`invalid event "${e.name}"`, code, e.code)
  } else {
    checks++
  }
}
for (const e of wire.events) {
  same(`wire event ${e.id.slice(0, 8)} id`, hex(decodeEvent(unhex(e.raw), g.networkId, g.params.max_event_bytes).id), e.id)
}

// §11.3 gossip
const raws = decodeEnvelope(unhex(wire.gossip.data), g.networkId)
same('gossip events', raws.map(hex).join(','), wire.events.map((e) => e.raw).join(','))
same('gossip re-encoded', hex(encodeEnvelope(g.networkId, raws)), wire.gossip.data)
same('gossip message id', hex(messageId(unhex(wire.gossip.data))), wire.gossip.message_id)
for (const r of wire.gossip_refused) {
  same(`gossip refused "${r.name}"`, codeOf(() => decodeEnvelope(unhex(r.data), g.networkId)), r.code)
}

// §11.4 frames
for (const s of wire.sync) {
  const v = fromVec(s.value)
  same(`sync "${s.name}" message`, hex(encode(v)), s.message)
  const { v: _, ...fields } = v
  same(`sync "${s.name}" frame`, hex(frame(fields)), s.frame)
  same(`sync "${s.name}" decodes`, hex(encode(decode(unhex(s.message)))), s.message)
}
same('non-canonical int refused', codeOf(() => decode(unhex('cc05'))), 'non_canonical')
same('float refused', codeOf(() => decode(unhex('cb3ff0000000000000'))), 'float')
same('trailing bytes refused', codeOf(() => decode(unhex('0505'))), 'trailing_bytes')
same('unsorted keys refused', codeOf(() => decode(unhex('82a16201a16101'))), 'non_canonical')

console.log(JSON.stringify({ selftest: 'ok', checks }))
