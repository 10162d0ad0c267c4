#!/usr/bin/env python3
"""manifest_to_c.py MANIFEST.json OUT.h - the capture manifest as C data.

The C test (tests/test_captures.c) asserts on these expectations; keeping them
as generated C avoids a JSON parser in a test. Standard library only.
"""
import json
import sys


def lit(s):
    if s is None:
        return 'NULL'
    b = s.encode() if isinstance(s, str) else bytes(s)
    return '"' + ''.join('\\x%02x' % c for c in b) + '"'


def main():
    m = json.load(open(sys.argv[1]))
    out = ['/* Generated from MANIFEST.json by manifest_to_c.py. Do not edit. */']
    cases = []
    for i, e in enumerate(m['files']):
        p = e.get('produce')
        recs = 'NULL'
        nrec = 0
        if p:
            rows = []
            for r in p['records']:
                hs = r.get('headers') or []
                hdrs = ', '.join('{%s, %s}' % (lit(k), lit(v)) for k, v in hs) or '{NULL, NULL}'
                ts = r['timestamp'] if r.get('timestamp') is not None else -1
                rows.append('    {%s, %s, %d, {%s}, %dLL},' % (lit(r['key']), lit(r['value']), len(hs), hdrs, ts))
            out.append('static const cap_rec cap_recs_%d[] = {' % i)
            out += rows
            out.append('};')
            recs = 'cap_recs_%d' % i
            nrec = len(rows)
        codec = {'none': 0, 'gzip': 1, 'snappy': 2, 'lz4': 3, 'zstd': 4}.get(p['codec'] if p else 'none', 0)
        cases.append('    {"%s", %s, %d, %d, %d, %s, %d, %d, %d, %s, %d, %d, %dLL, %d, %d, %d, %s},' % (
            e['file'], lit(e['client']['version']), e['api_key'], e['api_version'], e['correlation_id'],
            lit(e['client_id']), 1 if p else 0, p['acks'] if p else 0, p['timeout_ms'] if p else 0,
            lit(p['topic']) if p else 'NULL', p['partition'] if p else 0, codec,
            p.get('expected_producer_id', -1) if p else -1, p.get('expected_producer_epoch', -1) if p else -1,
            p.get('expected_base_sequence', -1) if p else -1, nrec, recs))
    out.append('static const cap_case cap_cases[] = {')
    out += cases
    out.append('};')
    with open(sys.argv[2], 'w') as fp:
        fp.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    main()
