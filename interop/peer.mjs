#!/usr/bin/env node
// A second learnmesh peer, written from PROTOCOL.md (§1–4, §10, §11) with
// js-libp2p 3.x. It joins a node, receives and verifies gossiped events,
// publishes an event it signed, syncs from a node, and then misbehaves to see
// that it is penalised.
//
//   node interop/peer.mjs --bootstrap MULTIADDR --genesis GENESIS.json
//        [--expect N] [--hostile N] [--seed HEX] [--timeout SECONDS]
//
// It prints one JSON object per line on stdout (a step and what it saw); the
// last is {"step": "done", ...}. It exits 0 when every step passed, 1 when
// one failed ({"step": "failed", "reason": ...}), 2 for bad arguments.
// Diagnostics go to stderr.

import './polyfill.mjs'
import fs from 'node:fs'
import crypto from 'node:crypto'
import { parseArgs } from 'node:util'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { gossipsub } from '@libp2p/gossipsub'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { byteStream } from '@libp2p/utils'
import {
  genesisFromJson, names, keyFromSeed, accountText, signEvent, decodeEvent, decodeEnvelope,
  encodeEnvelope, messageId, frame, checkAnswer, hex, unhex, ProtocolError, CanonError,
  SYNC_ANSWER_MAX
} from './lm.mjs'
import { compareBytes } from './canon.mjs'

// -- arguments -------------------------------------------------------------------------

function usage (why) {
  process.stderr.write(`peer.mjs: ${why}\nusage: node interop/peer.mjs --bootstrap MULTIADDR --genesis FILE [--expect N] [--hostile N] [--seed HEX] [--timeout S]\n`)
  process.exit(2)
}

let args
try {
  args = parseArgs({
    options: {
      bootstrap: { type: 'string', multiple: true },
      genesis: { type: 'string' },
      expect: { type: 'string', default: '1' },
      hostile: { type: 'string', default: '8' },
      seed: { type: 'string' },
      timeout: { type: 'string', default: '90' }
    }
  }).values
} catch (e) {
  usage(e.message)
}
if (!args.bootstrap?.length) usage('--bootstrap is required')
if (!args.genesis) usage('--genesis is required')
const expect = Number(args.expect)
const hostile = Number(args.hostile)
const timeoutS = Number(args.timeout)
if (!Number.isInteger(expect) || expect < 0) usage('--expect must be a non-negative integer')
if (!Number.isInteger(hostile) || hostile < 0) usage('--hostile must be a non-negative integer')
if (!(timeoutS > 0)) usage('--timeout must be a positive number of seconds')

let gen
try {
  gen = genesisFromJson(JSON.parse(fs.readFileSync(args.genesis, 'utf8')))
} catch (e) {
  usage(`cannot read the genesis ${args.genesis}: ${e.message}`)
}
let bootstrap
try {
  bootstrap = args.bootstrap.map((a) => multiaddr(a))
} catch (e) {
  usage(`bad multiaddr: ${e.message}`)
}
const seed = args.seed ? unhex(args.seed) : new Uint8Array(crypto.randomBytes(32))
if (seed.length !== 32) usage('--seed must be 64 hex digits')

// -- output ----------------------------------------------------------------------------

const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const log = (...xs) => process.stderr.write(`[js-peer] ${xs.join(' ')}\n`)
const started = Date.now()
const deadline = started + timeoutS * 1000
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

class StepFailed extends Error {}
async function until (what, check, { within = deadline - Date.now(), every = 100 } = {}) {
  const end = Math.min(deadline, Date.now() + within)
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() >= end) throw new StepFailed(`timed out waiting for ${what}`)
    await sleep(every)
  }
}

// -- the node --------------------------------------------------------------------------

const { topic, sync: syncProtocol } = names(gen.networkId)
const account = keyFromSeed(seed)
const maxEvent = gen.params.max_event_bytes

const received = new Map() // event id hex -> { author, seq, kind }
const refused = [] // [code, reason] of gossip this peer refused
let messages = 0

function validate (_from, msg) {
  messages++
  known.add(hex(messageId(msg.data)))
  try {
    const raws = decodeEnvelope(msg.data, gen.networkId)
    const events = raws.map((raw) => decodeEvent(raw, gen.networkId, maxEvent))
    for (const e of events) received.set(hex(e.id), { author: hex(e.author), seq: e.seq, kind: e.kind })
    return 'accept'
  } catch (e) {
    if (!(e instanceof ProtocolError || e instanceof CanonError)) throw e
    refused.push([e.code, e.message])
    return 'reject'
  }
}

const libp2p = await createLibp2p({
  privateKey: await generateKeyPair('Ed25519'),
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    // Not in PROTOCOL.md: the reference node pings every peer every 10 s on
    // /ipfs/ping/1.0.0 and marks one that refuses it as dead (node/_service.py).
    ping: ping(),
    pubsub: gossipsub({
      // §11.3: the message id is sha256(data), the same in every implementation
      msgIdFn: (msg) => messageId(msg.data),
      globalSignaturePolicy: 'StrictSign',
      emitSelf: false,
      allowPublishToZeroTopicPeers: false,
      fallbackToFloodsub: false
    })
  }
})
const pubsub = libp2p.services.pubsub
pubsub.topicValidators.set(topic, (from, msg) => validate(from, msg))

// The message ids nodes name in IHAVE and IDONTWANT must be sha256(data)
// (§11.3): keep every id they send, to check against the data we know.
const known = new Set() // hex sha256 of every message data seen or published
const controlIds = [] // [kind, hex id] from the nodes' control messages
const handleControl = pubsub.handleControlMessage.bind(pubsub)
pubsub.handleControlMessage = (id, control) => {
  for (const ih of control?.ihave ?? []) for (const m of ih.messageIDs ?? []) controlIds.push(['ihave', hex(m)])
  for (const dw of control?.idontwant ?? []) for (const m of dw.messageIDs ?? []) controlIds.push(['idontwant', hex(m)])
  return handleControl(id, control)
}

const disconnected = new Set()
libp2p.addEventListener('peer:disconnect', (evt) => {
  disconnected.add(evt.detail.toString())
  log('disconnected from', evt.detail.toString())
})

async function stop () {
  // bounded: the verdict is already printed, a slow goodbye must not hang the run
  const gaveUp = sleep(5000).then(() => log('stop: gave up after 5 s'))
  try { await Promise.race([libp2p.stop(), gaveUp]) } catch (e) { log('stop:', e.message) }
}

// -- sync client (§11.4, §11.5) --------------------------------------------------------

class SyncSession {
  static async open (peer) {
    const stream = await libp2p.dialProtocol(peer, syncProtocol, { signal: AbortSignal.timeout(5000) })
    return new SyncSession(stream)
  }

  constructor (stream) {
    this.stream = stream
    this.bytes = byteStream(stream)
  }

  async ask (msg) {
    const signal = AbortSignal.timeout(20000) // §11.5: a request and its answer within 20 s
    await this.bytes.write(frame(msg), { signal })
    const head = (await this.bytes.read({ bytes: 4, signal })).subarray()
    const n = new DataView(head.buffer, head.byteOffset, 4).getUint32(0)
    if (n > SYNC_ANSWER_MAX) throw new StepFailed(`a sync answer of ${n} bytes announced (limit ${SYNC_ANSWER_MAX})`)
    const body = (await this.bytes.read({ bytes: n, signal })).subarray()
    const answer = checkAnswer(body)
    if (answer.t === 'error') throw new StepFailed(`the node answered ${msg.t} with error: ${answer.reason}`)
    return answer
  }

  async close () {
    try { await this.stream.close() } catch (e) { log('closing the sync stream:', e.message) }
  }
}

function checkHeads (answer) {
  if (!Array.isArray(answer.heads)) throw new StepFailed('heads answer without heads')
  let prev = null
  for (const h of answer.heads) {
    if (!Array.isArray(h) || h.length !== 2 || !(h[0] instanceof Uint8Array) || h[0].length !== 32 || !Number.isInteger(h[1])) {
      throw new StepFailed('a heads entry that is not [bin32, int]')
    }
    if (prev && compareBytes(prev, h[0]) >= 0) throw new StepFailed('heads not sorted by author bytes')
    prev = h[0]
  }
  return new Map(answer.heads.map(([a, s]) => [hex(a), s]))
}

/** A range of one author's chain: every event decodes and verifies, is
 * this author's, in seq order from `start`, each linked to the one before. */
async function syncRange (session, author, start, head) {
  const out = []
  let next = start
  while (next <= head) {
    const answer = await session.ask({ t: 'range', author: unhex(author), start: next, limit: 500 })
    if (!Array.isArray(answer.events)) throw new StepFailed('range answer without events')
    if (answer.events.length === 0) break
    const before = next
    for (const raw of answer.events) {
      const e = decodeEvent(raw, gen.networkId, maxEvent)
      if (hex(e.author) !== author) throw new StepFailed(`range of ${author.slice(0, 8)} brought another author's event`)
      const last = out.at(-1)
      if (last && e.seq === last.seq) continue // a fork: both events are served; not expected here
      if (e.seq !== next) throw new StepFailed(`range of ${author.slice(0, 8)}: seq ${e.seq} where ${next} was due`)
      if (last && compareBytes(e.prev, last.id) !== 0) throw new StepFailed(`seq ${e.seq} does not link to seq ${last.seq}`)
      out.push(e)
      next = e.seq + 1
    }
    if (next === before) break // a page with nothing new (§11.5 stops there too)
  }
  return out
}

// -- the run ---------------------------------------------------------------------------

const summary = { peer_id: libp2p.peerId.toString(), account: accountText(account.publicKey) }

async function run () {
  const nodePeers = []
  for (const ma of bootstrap) {
    let conn
    try {
      conn = await libp2p.dial(ma, { signal: AbortSignal.timeout(15000) })
    } catch (e) {
      throw new StepFailed(`cannot dial ${ma}: ${e.message ?? e}`)
    }
    nodePeers.push(conn.remotePeer)
  }
  const nodeIds = nodePeers.map((p) => p.toString())
  pubsub.subscribe(topic)
  // The node has told us it is on the topic, and has us in its mesh (we have it in ours).
  await until('the node to join the topic mesh with this peer', () => {
    const mesh = pubsub.getMeshPeers(topic)
    return nodeIds.every((id) => mesh.includes(id))
  }, { within: 30000 })
  say({ step: 'joined', ...summary, nodes: nodeIds, topic, listen: libp2p.getMultiaddrs().map(String) })

  // 1. receive and verify gossiped events
  await until(`${expect} gossiped events`, () => received.size >= expect)
  say({ step: 'received', events: received.size, messages, refused: refused.length, ids: [...received.keys()] })

  // 2. publish an event signed here: a profile for this peer's own key, seq 1
  const own = signEvent(account, {
    network: gen.networkId,
    seq: 1,
    prev: null,
    timestamp: Date.now(),
    kind: 'profile',
    body: { name: 'js-peer', bio: 'a second implementation, from PROTOCOL.md', skills: ['interop'] },
    refs: []
  })
  const ownId = hex(own.id)
  const ownData = encodeEnvelope(gen.networkId, [own.raw])
  known.add(hex(messageId(ownData)))
  await pubsub.publish(topic, ownData)
  say({ step: 'published', id: ownId, account: summary.account, author: hex(account.publicKey) })

  // 3. sync from the first node: heads until it lists this peer's event (it
  // applied it), then a range of every author it lists, and `get` our own id
  const session = await SyncSession.open(nodePeers[0])
  let heads
  await until('the node to list this peer\'s event in its heads', async () => {
    heads = checkHeads(await session.ask({ t: 'heads' }))
    return heads.get(hex(account.publicKey)) === 1
  }, { every: 250 })
  let synced = 0
  const authors = {}
  for (const [author, head] of heads) {
    const events = await syncRange(session, author, 1, head)
    if (events.length !== head) throw new StepFailed(`range of ${author.slice(0, 8)} gave ${events.length} events, its head is ${head}`)
    authors[author] = events.length
    synced += events.length
  }
  const got = await session.ask({ t: 'get', ids: [own.id, new Uint8Array(32)] })
  if (!Array.isArray(got.events) || got.events.length !== 1 || hex(decodeEvent(got.events[0], gen.networkId, maxEvent).id) !== ownId) {
    throw new StepFailed('get of this peer\'s own event did not bring exactly it back')
  }
  const forks = await session.ask({ t: 'forks' })
  if (!Array.isArray(forks.proofs)) throw new StepFailed('forks answer without proofs')
  await session.close()
  const relayedOwn = [...received.keys()].includes(ownId)
  // This peer's gossipsub score of the node: with message ids that differ
  // between implementations it fell below the gossip threshold (issue 10).
  const nodeScore = pubsub.score.score(nodeIds[0])
  const unknownIds = controlIds.filter(([, id]) => !known.has(id))
  say({
    step: 'synced',
    authors: Object.keys(authors).length,
    events: synced,
    own_event_served: true,
    forks: forks.proofs.length,
    relayed_own: relayedOwn,
    node_score: nodeScore,
    control_ids: controlIds.length,
    control_ids_unknown: unknownIds
  })

  // 4. misbehave: a malformed sync request, an unparsable pubsub RPC, then
  // undecodable gossip, an event with a bad signature and an oversize
  // message, in turn, until the node(s) hang up (§11.7: 10 per offence, a
  // ban at 50)
  const sent = []
  // first a malformed sync request (§11.5): a `range` without its author
  // must get an `error` answer, then the stream is closed, and it costs
  const bad = await SyncSession.open(nodePeers[0])
  await bad.bytes.write(frame({ t: 'range', start: 1, limit: 10 }))
  const head = (await bad.bytes.read({ bytes: 4, signal: AbortSignal.timeout(20000) })).subarray()
  const answer = checkAnswer((await bad.bytes.read({ bytes: new DataView(head.buffer, head.byteOffset, 4).getUint32(0), signal: AbortSignal.timeout(20000) })).subarray())
  if (answer.t !== 'error' || typeof answer.reason !== 'string') throw new StepFailed(`a range without author was answered ${JSON.stringify(answer)}`)
  let closed = false
  try {
    closed = (await bad.bytes.read({ signal: AbortSignal.timeout(20000) })) === null
  } catch (e) {
    closed = true // reset rather than closed: also an end
  }
  if (!closed) throw new StepFailed('the node did not close the sync stream after its error answer')
  await bad.close()
  sent.push('bad_sync_request')
  say({ step: 'bad_sync_request', reason: answer.reason })
  // to the last node, an RPC on a pubsub stream that is not the pubsub
  // protobuf (a field of wire type 7): §11.3 says it resets that stream and costs
  const target = nodePeers.at(-1)
  const rpc = await libp2p.dialProtocol(target, ['/meshsub/1.2.0', '/meshsub/1.1.0'], { signal: AbortSignal.timeout(5000) })
  const rpcBytes = byteStream(rpc)
  await rpcBytes.write(Uint8Array.from([4, 0x0f, 0xff, 0xff, 0xff])) // uvarint length 4, then 4 bytes
  let rpcEnded = false
  try {
    rpcEnded = (await rpcBytes.read({ signal: AbortSignal.timeout(10000) })) === null
  } catch (e) {
    rpcEnded = true // reset: what §11.3 says
  }
  if (!rpcEnded) throw new StepFailed('the node kept a pubsub stream open after an unparsable RPC')
  sent.push('bad_rpc')
  say({ step: 'bad_rpc', node: target.toString(), stream_ended: rpcEnded })
  for (let i = 0; i < hostile && !nodeIds.every((id) => disconnected.has(id)); i++) {
    let data, what
    if (i % 3 === 0) {
      data = new Uint8Array([0xc1, ...crypto.randomBytes(8)]) // 0xc1 is never used in msgpack
      what = 'undecodable'
    } else if (i % 3 === 2) {
      // past the cap of §11.3 (262,144 + 1,024 bytes): dropped before decoding, and a penalty
      data = new Uint8Array(crypto.randomBytes(300000))
      what = 'oversize'
    } else {
      const bad = signEvent(account, {
        network: gen.networkId, seq: 2, prev: own.id, timestamp: Date.now() + i, kind: 'profile',
        body: { name: `forged ${i}`, bio: '', skills: [] }, refs: []
      })
      bad.raw[bad.raw.length - 1] ^= 0x01
      data = encodeEnvelope(gen.networkId, [bad.raw])
      what = 'bad_signature'
    }
    try {
      await pubsub.publish(topic, data)
      sent.push(what)
    } catch (e) {
      log('publish refused locally:', e.message)
      break
    }
    await sleep(150)
  }
  say({ step: 'hostile_sent', sent })
  await until('the node(s) to disconnect this peer', () => nodeIds.every((id) => disconnected.has(id)), { within: 30000 })
  // Dialling again: the node refuses a banned peer right after the Noise
  // handshake, so the dial fails or its connection is closed at once.
  let redialRefused = false
  let conn = null
  try {
    conn = await libp2p.dial(bootstrap[0], { signal: AbortSignal.timeout(10000) })
  } catch (e) {
    redialRefused = true
    log('redial refused:', e.message)
  }
  if (conn) {
    await until('the node to close the redialled connection', () => libp2p.getConnections(nodePeers[0]).length === 0, { within: 10000 })
    redialRefused = true
  }
  say({ step: 'penalised', sent: sent.length, disconnected: true, redial_refused: redialRefused })
  return { received: received.size, synced, own_id: ownId, hostile_sent: sent.length }
}

let code = 0
const watchdog = setTimeout(() => {
  say({ step: 'failed', reason: `overall timeout of ${timeoutS} s` })
  process.exit(1)
}, timeoutS * 1000 + 5000)
try {
  const result = await run()
  say({ step: 'done', ok: true, ...summary, ...result, seconds: (Date.now() - started) / 1000 })
} catch (e) {
  code = 1
  const expected = e instanceof StepFailed || e instanceof ProtocolError || e instanceof CanonError
  if (!expected) log(e?.stack ?? e) // a bug here, or libp2p's: the trace to stderr
  say({ step: 'failed', reason: expected ? e.message : `${e?.name ?? 'Error'}: ${e?.message ?? e}` })
}
clearTimeout(watchdog)
await stop()
process.exit(code)
