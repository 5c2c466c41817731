// Canonical msgpack, PROTOCOL.md §1.
//
// The encoder is written here from §1 (shortest ints, non-negative always
// unsigned, bin for bytes, str for text, keys sorted by their UTF-8 bytes);
// the decoder is @msgpack/msgpack's, followed by the checks §1 asks for:
// types, depth, key order, then re-encoding and comparing the bytes.

import { Decoder, ExtData } from '@msgpack/msgpack'

export class CanonError extends Error {
  constructor (code, reason) {
    super(`${code}: ${reason}`)
    this.code = code
  }
}

const utf8 = new TextEncoder()
const MAX_U64 = (1n << 64n) - 1n
const MIN_I64 = -(1n << 63n)

class Out {
  constructor () { this.parts = []; this.len = 0 }
  bytes (b) { this.parts.push(b); this.len += b.length }
  u8 (...xs) { this.bytes(Uint8Array.from(xs)) }
  be (tag, n, size) { // tag byte then `size` bytes big-endian of bigint n
    const b = new Uint8Array(1 + size)
    b[0] = tag
    let v = BigInt.asUintN(size * 8, n)
    for (let i = size; i >= 1; i--) { b[i] = Number(v & 0xffn); v >>= 8n }
    this.bytes(b)
  }
  concat () {
    const r = new Uint8Array(this.len)
    let o = 0
    for (const p of this.parts) { r.set(p, o); o += p.length }
    return r
  }
}

function encodeInt (out, n) {
  if (n < MIN_I64 || n > MAX_U64) throw new CanonError('type', `integer out of range: ${n}`)
  if (n >= 0n) {
    if (n < 128n) out.u8(Number(n))
    else if (n < 256n) out.be(0xcc, n, 1)
    else if (n < 65536n) out.be(0xcd, n, 2)
    else if (n < 4294967296n) out.be(0xce, n, 4)
    else out.be(0xcf, n, 8)
  } else {
    if (n >= -32n) out.u8(Number(n) & 0xff)
    else if (n >= -128n) out.be(0xd0, n, 1)
    else if (n >= -32768n) out.be(0xd1, n, 2)
    else if (n >= -2147483648n) out.be(0xd2, n, 4)
    else out.be(0xd3, n, 8)
  }
}

function compareBytes (a, b) {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}

function encodeValue (out, v, depth) {
  if (depth > 16) throw new CanonError('too_deep', 'nesting deeper than 16')
  if (v === null || v === undefined) out.u8(0xc0)
  else if (v === false) out.u8(0xc2)
  else if (v === true) out.u8(0xc3)
  else if (typeof v === 'bigint') encodeInt(out, v)
  else if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new CanonError('float', `not an integer: ${v}`)
    encodeInt(out, BigInt(v))
  } else if (typeof v === 'string') {
    const b = utf8.encode(v)
    if (b.length < 32) out.u8(0xa0 | b.length)
    else if (b.length < 256) out.u8(0xd9, b.length)
    else if (b.length < 65536) out.be(0xda, BigInt(b.length), 2)
    else out.be(0xdb, BigInt(b.length), 4)
    out.bytes(b)
  } else if (v instanceof Uint8Array) {
    if (v.length < 256) out.u8(0xc4, v.length)
    else if (v.length < 65536) out.be(0xc5, BigInt(v.length), 2)
    else out.be(0xc6, BigInt(v.length), 4)
    out.bytes(v)
  } else if (Array.isArray(v)) {
    if (v.length < 16) out.u8(0x90 | v.length)
    else if (v.length < 65536) out.be(0xdc, BigInt(v.length), 2)
    else out.be(0xdd, BigInt(v.length), 4)
    for (const x of v) encodeValue(out, x, depth + 1)
  } else if (typeof v === 'object' && !(v instanceof Date)) {
    const entries = (v instanceof Map ? [...v.entries()] : Object.entries(v))
      .map(([k, x]) => {
        if (typeof k !== 'string') throw new CanonError('map_key', 'map keys must be str')
        return [utf8.encode(k), k, x]
      })
      .sort((a, b) => compareBytes(a[0], b[0]))
    const n = entries.length
    if (n < 16) out.u8(0x80 | n)
    else if (n < 65536) out.be(0xde, BigInt(n), 2)
    else out.be(0xdf, BigInt(n), 4)
    for (const [, k, x] of entries) {
      encodeValue(out, k, depth + 1)
      encodeValue(out, x, depth + 1)
    }
  } else {
    throw new CanonError('type', `cannot encode ${Object.prototype.toString.call(v)}`)
  }
}

/** The one canonical encoding of `v` (numbers must be integers; bytes are Uint8Array). */
export function encode (v) {
  const out = new Out()
  encodeValue(out, v, 0)
  return out.concat()
}

// useBigInt64: 64-bit ints come back as bigint, so nothing loses precision;
// small ones are turned into numbers below (and re-encoding catches a long
// form for a small value).
const decoder = new Decoder({
  useBigInt64: true,
  mapKeyConverter: (k) => {
    if (typeof k !== 'string') throw new CanonError('map_key', 'a map key that is not str')
    return k
  }
})
// §1 refuses floats with their own code (a float 1.0 is not the int 1).
decoder.readF32 = decoder.readF64 = () => { throw new CanonError('float', 'a float') }

function normalise (v, depth) {
  if (depth > 16) throw new CanonError('too_deep', 'nesting deeper than 16')
  if (typeof v === 'bigint') return (v >= -(2n ** 53n) && v < 2n ** 53n) ? Number(v) : v
  if (typeof v === 'number' && !Number.isInteger(v)) throw new CanonError('float', 'a float')
  if (v instanceof Date) throw new CanonError('type', 'the timestamp extension type')
  if (v instanceof ExtData) throw new CanonError('ext_type', `extension type ${v.type}`)
  if (Array.isArray(v)) return v.map((x) => normalise(x, depth + 1))
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o = Object.create(null)
    let prev = null
    for (const [k, x] of Object.entries(v)) {
      const kb = utf8.encode(k)
      if (prev !== null && compareBytes(prev, kb) >= 0) throw new CanonError('non_canonical', 'map keys out of order')
      prev = kb
      o[k] = normalise(x, depth + 1)
    }
    return o
  }
  return v
}

/** Decode `bytes` and insist they are the canonical encoding of the value
 * (§1). Maps come back as null-prototype objects, bytes as Uint8Array, ints
 * as numbers (bigint above 2^53). Throws CanonError with a §1 code. */
export function decode (bytes, maxBytes = Infinity) {
  if (bytes.length > maxBytes) throw new CanonError('oversize', `${bytes.length} bytes > ${maxBytes}`)
  let raw
  try {
    raw = decoder.decode(bytes)
  } catch (e) {
    if (e instanceof CanonError) throw e
    const msg = String(e?.message ?? e)
    if (/^Extra \d+ of \d+ byte/.test(msg)) throw new CanonError('trailing_bytes', msg)
    if (/timestamp/i.test(msg)) throw new CanonError('ext_type', msg)
    throw new CanonError('undecodable', msg)
  }
  const v = normalise(raw, 0)
  const again = encode(v)
  if (compareBytes(again, bytes) !== 0) throw new CanonError('non_canonical', 'does not re-encode to the same bytes')
  return v
}

export function isMap (v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}

export { compareBytes }
