// KafkaJS 2.2.4, non-idempotent, many produce requests in flight on one connection: large records to one
// partition outrun the log's flushes. Every acknowledged record must sit in the log in the order its
// request went on the wire (the broker waits under backpressure instead of answering a retriable error
// that KafkaJS would retry after later requests were appended).
// KafkaJS itself may put concurrent send() calls on the wire in another order than they were made (the
// last two swap, against Apache Kafka too), so the expected order is the wire order, seen through a
// socketFactory that watches the Produce frames: record i has a value of a length unique to i.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { spawnSync } from 'node:child_process'
import { Kafka, logLevel } from 'kafkajs'
import { BOOTSTRAP, uniq, createTopicsReady } from '../helpers.mjs'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'

// Frame sizes of the Produce requests, in the order they were written, per socket.
const wire = []
function watchingSocketFactory ({ host, port, onConnect }) {
  const socket = net.connect({ host, port }, onConnect)
  socket.setKeepAlive(true, 60000)
  let pending = Buffer.alloc(0)
  let skip = 0 // bytes of a frame already seen whose body is still being written
  const write = socket.write.bind(socket)
  socket.write = (chunk, ...rest) => {
    let buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)
    if (pending.length > 0) { // a frame header split across writes: only it is copied
      buf = Buffer.concat([pending, buf])
      pending = Buffer.alloc(0)
    }
    while (buf.length > 0) {
      if (skip > 0) {
        const n = Math.min(skip, buf.length)
        skip -= n
        buf = buf.subarray(n)
        continue
      }
      if (buf.length < 6) { pending = Buffer.from(buf); break }
      const size = buf.readInt32BE(0)
      if (buf.readInt16BE(4) === 0) wire.push(size)
      skip = 4 + size
    }
    return write(chunk, ...rest)
  }
  return socket
}

const kafka = new Kafka({ clientId: 'compat-kafkajs-order', brokers: [BOOTSTRAP], logLevel: logLevel.NOTHING,
  requestTimeout: 60000, retry: { retries: 5, initialRetryTime: 100 }, socketFactory: watchingSocketFactory })
const admin = kafka.admin()
await admin.connect()
after(async () => { await admin.disconnect() })

const N_SMALL = 500
const N_LARGE = 200
// Strictly increasing with i, and far enough apart that frame sizes keep that order.
const valueLen = (i) => (i < N_SMALL ? 10000 : 500000) + 16 * i

function readKeys (topic) {
  const r = spawnSync('kcat', ['-b', BOOTSTRAP, '-C', '-t', topic, '-p', '0', '-o', 'beginning', '-e',
    '-f', '%k\n'], { encoding: 'utf8', timeout: 60000, maxBuffer: 64 << 20 })
  if (r.status !== 0) throw new Error(`kcat failed (${r.status}): ${r.stderr}`)
  return r.stdout.split('\n').filter(Boolean).map(Number)
}

for (const acks of [-1, 1]) {
  test(`records keep their wire order with many requests in flight (acks=${acks})`, async () => {
    const t = uniq('kjs-order')
    await createTopicsReady(admin, { topics: [{ topic: t, numPartitions: 1 }] })
    const producer = kafka.producer({ idempotent: false, maxInFlightRequests: 100, allowAutoTopicCreation: false })
    await producer.connect()
    const acked = new Map()
    wire.length = 0
    try {
      // One send() per record, none awaited before the next: each is its own request on the connection.
      const sends = []
      for (let i = 0; i < N_SMALL + N_LARGE; i++) {
        sends.push(producer.send({ topic: t, acks, messages: [{ key: String(i), value: 'v'.repeat(valueLen(i)), partition: 0 }] })
          .then(res => acked.set(i, Number(res[0].baseOffset))))
      }
      await Promise.all(sends)
    } finally {
      await producer.disconnect()
    }
    const n = N_SMALL + N_LARGE
    assert.equal(acked.size, n)
    assert.equal(wire.length, n, 'one Produce request per record, each sent once (no retry happened)')
    // Record i's frame is the i-th smallest: its rank among the sizes is i.
    const rank = new Map([...wire].sort((a, b) => a - b).map((size, i) => [size, i]))
    const expected = wire.map(size => rank.get(size))
    const log = readKeys(t)
    assert.equal(log.length, n)
    const wrong = log.map((k, off) => [off, k, expected[off]]).filter(([, k, e]) => k !== e)
    assert.deepEqual(wrong.slice(0, 10), [], `${wrong.length} records not in wire order [offset, key, expected]`)
    const wrongAcks = [...acked].filter(([i, off]) => log[off] !== i)
    assert.deepEqual(wrongAcks.slice(0, 10), [], `${wrongAcks.length} acks name an offset holding another record`)
  })
}
