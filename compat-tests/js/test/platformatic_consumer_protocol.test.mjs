// @platformatic/kafka with groupProtocol 'consumer' (KIP-848: ConsumerGroupHeartbeat, server-side
// assignment): one member gets every partition, a second one joins and the partitions
// are split only after revocation, offsets are committed with member epochs and read back, the group
// is listed as type "consumer", and a member leaving hands its partitions back.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { Admin, Producer, Consumer, stringSerializers, stringDeserializers } from '@platformatic/kafka'
import { BOOTSTRAP, uniq, eventually } from '../helpers.mjs'

const bootstrapBrokers = [BOOTSTRAP]
const admin = new Admin({ clientId: 'compat-plt848-admin', bootstrapBrokers })
after(async () => { await admin.close() })

function newConsumer (groupId, n) {
  return new Consumer({ clientId: `compat-plt848-${n}`, groupId, groupProtocol: 'consumer',
    groupRemoteAssignor: 'uniform', bootstrapBrokers, deserializers: stringDeserializers, retries: 10 })
}

function owned (c) {
  return (c.assignments ?? []).reduce((n, a) => n + a.partitions.length, 0)
}

test('KIP-848 consumer group: assignment, rebalance, commit, leave', async () => {
  const t = uniq('plt848')
  const groupId = uniq('plt848-g')
  await admin.createTopics({ topics: [t], partitions: 4, replicas: 1 })
  // Kafka answers CreateTopics before every partition has a leader; a produce then fails for some
  // partitions and this client retries the whole request: without idempotence the others get the
  // records twice (seen against Kafka 4.4: committed offsets 4,2,4,4).
  await eventually(async () => {
    const parts = (await admin.metadata({ topics: [t] })).topics.get(t).partitions
    assert.deepEqual(parts.map(p => p.leader >= 0), [true, true, true, true])
  })
  const producer = new Producer({ clientId: 'compat-plt848-p', bootstrapBrokers, serializers: stringSerializers,
    idempotent: true, acks: -1 })
  try {
    await producer.send({ messages: [0, 1, 2, 3, 4, 5, 6, 7].map(i => ({ topic: t, partition: i % 4, key: `k${i}`, value: `v${i}` })) })
  } finally { await producer.close() }

  const c1 = newConsumer(groupId, 1)
  const c2 = newConsumer(groupId, 2)
  let c2open = true
  let s1 = null
  try {
    // The stream stays open: closing it would drop its topics from the member's subscription.
    s1 = await c1.consume({ topics: [t], mode: 'earliest', autocommit: false })
    const got = new Set()
    let commitsDone = 0
    await new Promise((resolve, reject) => {
      s1.on('error', reject)
      s1.on('data', m => {
        got.add(`${m.partition}|${m.key}|${m.value}`)
        // Wait for every commit, not the first one answered after the 8th record arrived: when all
        // records come in one fetch, the other commits are still in flight then (seen on kbroker).
        m.commit(err => {
          if (err) reject(err)
          else if (++commitsDone === 8) resolve()
        })
      })
    })
    assert.equal(got.size, 8)
    assert.equal(owned(c1), 4)

    // The group is a consumer-type group.
    const groups = await admin.listGroups({ types: ['consumer'] })
    assert.ok(groups.has(groupId), `group ${groupId} not listed as consumer`)

    // Committed offsets were checked against the member epoch and are readable.
    const committed = await c1.listCommittedOffsets({ topics: [{ topic: t, partitions: [0, 1, 2, 3] }] })
    assert.deepEqual(committed.get(t), [2n, 2n, 2n, 2n])

    // A second member: the server splits the partitions once c1 has revoked two.
    await c2.consume({ topics: [t], mode: 'committed', autocommit: false })
    await eventually(() => {
      assert.equal(owned(c1), 2)
      assert.equal(owned(c2), 2)
    }, 30000)
    const mine = new Set(c1.assignments.flatMap(a => a.partitions))
    for (const p of c2.assignments.flatMap(a => a.partitions)) assert.ok(!mine.has(p), `partition ${p} owned twice`)

    // c2 leaves: c1 gets everything back.
    await c2.close(true)
    c2open = false
    await eventually(() => assert.equal(owned(c1), 4), 30000)
  } finally {
    // The client leaves an open stream's fetch connection behind on close(): close the stream first.
    if (s1) await s1.close()
    await c1.close(true)
    if (c2open) await c2.close(true)
  }
})
