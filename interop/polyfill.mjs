// js-libp2p 3.x calls Promise.withResolvers (Node 22+); Node 20 lacks it.
// Imported first by peer.mjs, before any libp2p module is evaluated.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
