"""aiokafka: idempotent AIOKafkaProducer with keys, headers and every codec, AIOKafkaConsumer by assignment
and in a group with commit and resume, AIOKafkaAdminClient (topics, partitions, configs, offsets, groups,
records), error cases.

Owns: the aiokafka checks. Must not: depend on another test's topics or groups."""

import asyncio
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common3 import CODECS, GROUP_SETS, BrokerTestCase, uniq, value  # noqa: E402

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic  # noqa: E402
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType  # noqa: E402
from aiokafka.admin.records_to_delete import RecordsToDelete  # noqa: E402
from aiokafka.errors import (MessageSizeTooLargeError, OffsetOutOfRangeError,  # noqa: E402
                             TopicAlreadyExistsError, UnknownTopicOrPartitionError)

N = 200


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


class AioKafkaTest(BrokerTestCase):
    extra_sets = GROUP_SETS

    async def admin(self):
        a = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=15000)
        await a.start()
        return a

    async def producer(self, **kw):
        p = AIOKafkaProducer(**dict(dict(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
                                         linger_ms=5), **kw))
        await p.start()
        return p

    def test_produce_consume_codecs(self):
        async def body():
            a = await self.admin()
            try:
                for codec in CODECS:
                    topic = uniq("aio-" + codec)
                    await a.create_topics([NewTopic(topic, 2, 1)])
                    p = await self.producer(compression_type=None if codec == "none" else codec)
                    try:
                        at = {}
                        futs = [await p.send(topic, key=b"k%d" % (i % 5), value=value(i),
                                             headers=[("i", b"%d" % i), ("empty", b"")]) for i in range(N)]
                        for i, f in enumerate(futs):
                            md = await f
                            at[(md.partition, md.offset)] = i
                    finally:
                        await p.stop()
                    c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                         auto_offset_reset="earliest", fetch_max_wait_ms=100)
                    await c.start()
                    try:
                        c.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
                        got = []
                        deadline = time.monotonic() + 30
                        while len(got) < N and time.monotonic() < deadline:
                            for msgs in (await c.getmany(timeout_ms=500)).values():
                                got.extend(msgs)
                    finally:
                        await c.stop()
                    self.assertEqual(len(got), N, codec)
                    for m in got:
                        i = at[(m.partition, m.offset)]
                        self.assertEqual((m.key, m.value), (b"k%d" % (i % 5), value(i)))
                        self.assertEqual(list(m.headers), [("i", b"%d" % i), ("empty", b"")])
            finally:
                await a.close()
        run(body())

    async def group_run(self, group, topic, n):
        c = AIOKafkaConsumer(topic, bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=100, session_timeout_ms=10000,
                             heartbeat_interval_ms=1000)
        await c.start()
        try:
            seen = {}
            deadline = time.monotonic() + 60
            while len(seen) < n and time.monotonic() < deadline:
                for msgs in (await c.getmany(timeout_ms=500)).values():
                    for m in msgs:
                        seen[m.key] = (m.partition, m.offset)
            self.assertEqual(len(seen), n)
            await c.commit()
            return seen
        finally:
            await c.stop()

    def test_group_commit_resume(self):
        async def body():
            a = await self.admin()
            try:
                topic, group = uniq("aio-grp"), uniq("aio-g")
                await a.create_topics([NewTopic(topic, 3, 1)])
                p = await self.producer()
                try:
                    for i in range(15):
                        await p.send_and_wait(topic, key=b"%d" % i, value=value(i), partition=i % 3)
                    await self.group_run(group, topic, 15)
                    offs = await a.list_consumer_group_offsets(group)
                    self.assertEqual({tp.partition: o.offset for tp, o in offs.items() if tp.topic == topic},
                                     {0: 5, 1: 5, 2: 5})
                    for i in range(15, 30):
                        await p.send_and_wait(topic, key=b"%d" % i, value=value(i), partition=i % 3)
                finally:
                    await p.stop()
                second = await self.group_run(group, topic, 15)
                self.assertEqual(set(second), {b"%d" % i for i in range(15, 30)})
                groups = await a.list_consumer_groups()
                self.assertIn((group, "consumer"), [(g[0], g[1]) for g in groups])
                d = await a.describe_consumer_groups([group])
                g = d[0].groups[0]  # (error_code, group_id, state, protocol_type, protocol, members, ...)
                self.assertEqual((g[0], g[1], g[2], g[3], len(g[5])), (0, group, "Empty", "consumer", 0))
            finally:
                await a.close()
        run(body())

    def test_admin(self):
        async def body():
            a = await self.admin()
            try:
                topic = uniq("aio-adm")
                await a.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "3600000"})])
                with self.assertRaises(TopicAlreadyExistsError):
                    r = await a.create_topics([NewTopic(topic, 1, 1)])
                    # aiokafka answers the response; the error code is in it
                    for name, code, *_ in r.topic_errors:
                        if code:
                            raise TopicAlreadyExistsError()
                cl = await a.describe_cluster()
                self.assertEqual(len(cl["brokers"]), 1)
                await a.create_partitions({topic: NewPartitions(3)})
                deadline = time.monotonic() + 10
                while True:
                    md = await a.describe_topics([topic])
                    if len(md[0]["partitions"]) == 3 or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.2)
                self.assertEqual(len(md[0]["partitions"]), 3)
                res = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
                entries = {e[0]: e[1] for e in res[0].resources[0][4]}
                self.assertEqual(entries["retention.ms"], "3600000")
                await a.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "7200000"})])
                deadline = time.monotonic() + 10
                while True:
                    res = await a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
                    if {e[0]: e[1] for e in res[0].resources[0][4]}["retention.ms"] == "7200000":
                        break
                    self.assertLess(time.monotonic(), deadline, "retention.ms not altered")
                    await asyncio.sleep(0.2)
                p = await self.producer()
                try:
                    for i in range(6):
                        await p.send_and_wait(topic, value=value(i), partition=0)
                finally:
                    await p.stop()
                tp = TopicPartition(topic, 0)
                dr = await a.delete_records({tp: RecordsToDelete(2)})
                self.assertEqual(dr[tp], 2)
                await a.delete_topics([topic])
                r = await a.delete_topics([uniq("aio-missing")])
                self.assertEqual([e[1] for e in r.topic_error_codes], [UnknownTopicOrPartitionError.errno])
            finally:
                await a.close()
        run(body())

    def test_error_offset_out_of_range(self):
        async def body():
            a = await self.admin()
            topic = uniq("aio-oor")
            try:
                await a.create_topics([NewTopic(topic, 1, 1)])
            finally:
                await a.close()
            p = await self.producer()
            try:
                await p.send_and_wait(topic, b"x", partition=0)
            finally:
                await p.stop()
            c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                 auto_offset_reset="none", fetch_max_wait_ms=100)
            await c.start()
            try:
                tp = TopicPartition(topic, 0)
                c.assign([tp])
                c.seek(tp, 1000)
                with self.assertRaises(OffsetOutOfRangeError):
                    await asyncio.wait_for(c.getone(), 20)
            finally:
                await c.stop()
        run(body())

    def test_error_record_too_large(self):
        async def body():
            a = await self.admin()
            topic = uniq("aio-big")
            try:
                await a.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "1024"})])
            finally:
                await a.close()
            p = await self.producer(enable_idempotence=False)
            try:
                with self.assertRaises(MessageSizeTooLargeError):
                    await p.send_and_wait(topic, b"\0" * 8192, partition=0)
            finally:
                await p.stop()
        run(body())


if __name__ == "__main__":
    unittest.main()
