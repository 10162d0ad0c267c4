#!/usr/bin/env python3
"""kpgen.py - generate C codecs for every Kafka protocol message.

Reads the vendored message definitions (kafka-proto/spec/messages/**.json) and
writes, into --out:
  kp_messages.h       C types, init/decode/encode/size for every message
                      (requests, responses, headers, data and internal records),
                      and the API table (key -> versions, flexible versions,
                      generic entry points) that ApiVersions is built from.
  kp_messages.c       their implementation.
  kp_messages_test.c  test support: fill a message with non-default values for a
                      version, and compare two messages (round-trip tests only).

One C function per message handles every version at run time, as Kafka's own
generated Java does; the version decides which fields are on the wire, whether
the encoding is flexible (compact lengths + tagged fields) and nullability.
Standard library only: it runs from the build with the base system's python3.
"""
import argparse
import json
import os
import re
import sys

C_KEYWORDS = {
    'auto', 'break', 'case', 'char', 'const', 'continue', 'default', 'do', 'double', 'else', 'enum',
    'extern', 'float', 'for', 'goto', 'if', 'int', 'long', 'register', 'return', 'short', 'signed',
    'sizeof', 'static', 'struct', 'switch', 'typedef', 'union', 'unsigned', 'void', 'volatile', 'while',
    'bool', 'inline', 'restrict'}

PRIMS = {
    # type: (ctype, read fn, write fn, fixed encoded size or None)
    'int8': ('int8_t', 'kp_read_i8', 'kp_write_i8', 1),
    'int16': ('int16_t', 'kp_read_i16', 'kp_write_i16', 2),
    'uint16': ('uint16_t', 'kp_read_u16', 'kp_write_u16', 2),
    'int32': ('int32_t', 'kp_read_i32', 'kp_write_i32', 4),
    'uint32': ('uint32_t', 'kp_read_u32', 'kp_write_u32', 4),
    'int64': ('int64_t', 'kp_read_i64', 'kp_write_i64', 8),
    'float64': ('double', 'kp_read_f64', 'kp_write_f64', 8),
    'bool': ('uint8_t', 'kp_read_bool', 'kp_write_bool', 1),
    'uuid': ('kp_uuid', 'kp_read_uuid', 'kp_write_uuid', 16),
    'string': ('kp_str', None, None, None),
    'bytes': ('kp_bytes', None, None, None),
    'records': ('kp_bytes', None, None, None),
}


def snake(name):
    s = re.sub(r'(?<=[a-z0-9])([A-Z])', r'_\1', name)
    s = re.sub(r'(?<=[A-Z])([A-Z][a-z])', r'_\1', s)
    return s.lower()


def cname(name):
    s = snake(name)
    return s + '_' if s in C_KEYWORDS else s


class Versions:
    """A version range: 'none', 'N', 'N+', 'N-M'."""

    def __init__(self, spec):
        spec = (spec or 'none').strip()
        if spec == 'none':
            self.lo, self.hi = None, None
        elif spec.endswith('+'):
            self.lo, self.hi = int(spec[:-1]), 32767
        elif '-' in spec:
            a, b = spec.split('-')
            self.lo, self.hi = int(a), int(b)
        else:
            self.lo = self.hi = int(spec)

    def empty(self):
        return self.lo is None

    def contains(self, v):
        return not self.empty() and self.lo <= v <= self.hi

    def intersect(self, other):
        r = Versions('none')
        if self.empty() or other.empty():
            return r
        lo, hi = max(self.lo, other.lo), min(self.hi, other.hi)
        if lo <= hi:
            r.lo, r.hi = lo, hi
        return r

    def cond(self, var='v', within=None):
        """C expression true when var is in range; 'within' is the message's
        valid range, used to drop comparisons that are always true."""
        if self.empty():
            return '0'
        lo_needed = not (within and within.lo is not None and self.lo <= within.lo)
        hi_needed = not (within and within.hi is not None and self.hi >= within.hi) and self.hi != 32767
        parts = []
        if lo_needed and self.lo > 0:
            parts.append('%s >= %d' % (var, self.lo))
        if hi_needed:
            parts.append('%s <= %d' % (var, self.hi))
        if within is not None and self.intersect(within).empty():
            return '0'
        return ' && '.join(parts) if parts else '1'


class Field:
    def __init__(self, d, msg):
        self.d = d
        self.name = d['name']
        self.c = cname(d['name'])
        self.type = d['type']
        tagged = d.get('taggedVersions')
        self.versions = Versions(d.get('versions') or tagged)
        self.nullable = Versions(d.get('nullableVersions'))
        self.tag = int(d['tag']) if 'tag' in d else None
        self.tagged = Versions(tagged) if tagged else None
        self.ignorable = bool(d.get('ignorable'))
        self.default = d.get('default')
        # Field-level flexibleVersions: only RequestHeader.ClientId ("none").
        self.flex_override = d.get('flexibleVersions')
        self.is_array = self.type.startswith('[]')
        self.elem = self.type[2:] if self.is_array else self.type
        self.elem_is_struct = self.elem not in PRIMS
        self.struct = None  # StructDef for struct / []struct
        if self.tagged is not None:
            self.versions = self.versions.intersect(self.tagged)

    @property
    def struct_ptr(self):
        """Non-array struct fields that may be absent (nullable or tagged) are
        pointers (NULL = null / not sent); the others are embedded."""
        return (not self.is_array and self.elem_is_struct and
                (not self.nullable.empty() or self.tagged is not None))


class StructDef:
    def __init__(self, name, ctype, fields_json, msg):
        self.name = name
        self.ctype = ctype
        self.msg = msg
        self.fields = [Field(f, msg) for f in fields_json]
        self.fields_json = fields_json


class Message:
    def __init__(self, d, path):
        self.d = d
        self.path = path
        self.name = d['name']
        self.kind = d['type']
        self.c = 'kp_' + snake(self.name)
        self.valid = Versions(d['validVersions'])
        self.flexible = Versions(d.get('flexibleVersions'))
        self.api_key = d.get('apiKey')
        self.listeners = d.get('listeners', [])
        self.unstable = bool(d.get('latestVersionUnstable'))
        self.structs = {}  # name -> StructDef, in definition order
        self.order = []    # StructDefs, dependencies first
        common = {cs['name']: cs for cs in d.get('commonStructs', [])}
        self.top = StructDef(self.name, self.c, d.get('fields', []), self)
        self._resolve(self.top, common)
        self.order.append(self.top)

    def _resolve(self, sd, common):
        for f in sd.fields:
            if not f.elem_is_struct:
                continue
            sname = f.elem
            if sname in self.structs:
                f.struct = self.structs[sname]
                if 'fields' in f.d and f.d['fields'] != f.struct.fields_json:
                    sys.exit('%s: struct %s defined twice differently' % (self.path, sname))
                continue
            if 'fields' in f.d:
                fj = f.d['fields']
            elif sname in common:
                fj = common[sname]['fields']
            else:
                sys.exit('%s: unknown struct type %s' % (self.path, sname))
            child = StructDef(sname, '%s_%s' % (self.c, snake(sname)), fj, self)
            self.structs[sname] = child
            f.struct = child
            self._resolve(child, common)
            self.order.append(child)


def c_int_literal(ctype, value):
    if isinstance(value, bool):
        return '1' if value else '0'
    s = str(value).strip()
    if s.lower() in ('true', 'false'):
        return '1' if s.lower() == 'true' else '0'
    n = int(s, 0)
    if ctype == 'double':
        return repr(float(s))
    if n == -2**63:
        return 'INT64_MIN'
    if n == -2**31 and ctype == 'int32_t':
        return 'INT32_MIN'
    return '(%s)%dLL' % (ctype, n)


def c_string_literal(s):
    return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


class Gen:
    def __init__(self, msgs, apis):
        self.msgs = msgs
        self.apis = apis
        self.h = []
        self.c = []
        self.t = []

    # ---- helpers ---------------------------------------------------------
    def flex_expr(self, f, msg):
        if f.flex_override is not None:
            return '0' if Versions(f.flex_override).empty() else 'flex'
        return 'flex'

    def default_expr(self, f):
        """Init value expression for scalar fields (None = zero)."""
        ctype = PRIMS[f.type][0] if f.type in PRIMS else None
        if f.default is None or f.type in ('uuid',):
            return None
        if f.type in ('string',):
            return None
        return c_int_literal(ctype, f.default)

    def string_default(self, f):
        """None for null, else the literal."""
        if f.default is None:
            return ''
        if str(f.default) == 'null':
            return None
        return str(f.default)

    def is_default_expr(self, f, x):
        """C expression: field value x (an lvalue path) equals its default."""
        if f.is_array:
            if f.default is not None and str(f.default) == 'null':
                return '%s_count < 0' % x
            return '%s_count == 0' % x
        if f.elem_is_struct:
            return '%s == NULL' % x if f.struct_ptr else '1'
        if f.type == 'string':
            d = self.string_default(f)
            return 'kp_str_eq(%s, %s)' % (x, 'NULL' if d is None else c_string_literal(d))
        if f.type in ('bytes', 'records'):
            if f.default is not None and str(f.default) == 'null':
                return '%s.len < 0' % x
            return '%s.len <= 0' % x
        if f.type == 'uuid':
            return 'kp_uuid_is_zero(&%s)' % x
        d = self.default_expr(f) or '0'
        return '%s == %s' % (x, d)

    # ---- declarations ----------------------------------------------------
    def emit_struct_decl(self, sd):
        self.h.append('typedef struct %s {' % sd.ctype)
        seen = set()
        for f in sd.fields:
            names = [f.c] + ([f.c + '_count'] if f.is_array else [])
            for n in names:
                if n in seen:
                    sys.exit('%s: field name clash %s' % (sd.ctype, n))
                seen.add(n)
            if f.is_array:
                et = f.struct.ctype if f.elem_is_struct else PRIMS[f.elem][0]
                self.h.append('    %s *%s;' % (et, f.c))
                self.h.append('    int32_t %s_count; /* -1: null */' % f.c)
            elif f.elem_is_struct:
                if f.struct_ptr:
                    self.h.append('    %s *%s; /* NULL: null / absent */' % (f.struct.ctype, f.c))
                else:
                    self.h.append('    %s %s;' % (f.struct.ctype, f.c))
            else:
                self.h.append('    %s %s;' % (PRIMS[f.type][0], f.c))
        if not sd.fields:
            self.h.append('    uint8_t unused_;')
        self.h.append('} %s;' % sd.ctype)
        self.h.append('')

    # ---- init --------------------------------------------------------------
    def emit_init(self, sd, public):
        c = self.c
        c.append('void %s_init(%s *o)' % (sd.ctype, sd.ctype))
        c.append('{')
        c.append('    memset(o, 0, sizeof(*o));')
        for f in sd.fields:
            x = 'o->' + f.c
            if f.is_array:
                if f.default is not None and str(f.default) == 'null':
                    c.append('    %s_count = -1;' % x)
            elif f.elem_is_struct:
                if not f.struct_ptr:
                    c.append('    %s_init(&%s);' % (f.struct.ctype, x))
            elif f.type == 'string':
                d = self.string_default(f)
                c.append('    %s = %s;' % (x, 'KP_STR_NULL' if d is None else 'kp_str_c(%s)' % c_string_literal(d)))
            elif f.type in ('bytes', 'records'):
                if f.type == 'records' or (f.default is not None and str(f.default) == 'null'):
                    c.append('    %s = KP_BYTES_NULL;' % x)
                else:
                    c.append('    %s.p = (const uint8_t *)"";' % x)
            else:
                d = self.default_expr(f)
                if d is not None:
                    c.append('    %s = %s;' % (x, d))
        c.append('}')
        c.append('')

    # ---- decode -----------------------------------------------------------
    def dec_value(self, f, typ, R, x, flex, nullable_cond, out, ind):
        """Decode one value of primitive or struct type into lvalue x."""
        p = ' ' * ind
        if typ in PRIMS:
            if typ == 'string':
                out.append(p + 'if (%s ? kp_read_compact_string(%s, &%s) : kp_read_string(%s, &%s))' % (flex, R, x, R, x))
                out.append(p + '    return %s->err;' % R)
                if nullable_cond != '1':
                    out.append(p + 'if (%s.len < 0 && !(%s))' % (x, nullable_cond))
                    out.append(p + '    return KP_E_INVALID;')
            elif typ in ('bytes', 'records'):
                out.append(p + 'if (%s ? kp_read_compact_bytes(%s, &%s) : kp_read_bytes(%s, &%s))' % (flex, R, x, R, x))
                out.append(p + '    return %s->err;' % R)
                if nullable_cond != '1':
                    out.append(p + 'if (%s.len < 0 && !(%s))' % (x, nullable_cond))
                    out.append(p + '    return KP_E_INVALID;')
            else:
                out.append(p + 'if (%s(%s, &%s))' % (PRIMS[typ][1], R, x))
                out.append(p + '    return %s->err;' % R)
        else:
            out.append(p + '{')
            out.append(p + '    int rc = %s_decode_(%s, a, v, &%s);' % (f.struct.ctype, R, x))
            out.append(p + '    if (rc)')
            out.append(p + '        return rc;')
            out.append(p + '}')

    def min_size(self, typ, flex):
        if typ in PRIMS:
            fixed = PRIMS[typ][3]
            if fixed:
                return str(fixed)
            if typ == 'string':
                return '(%s ? 1 : 2)' % flex
            return '(%s ? 1 : 4)' % flex
        return '1'

    def dec_field(self, f, msg, R, x, flex, out, ind):
        p = ' ' * ind
        null_cond = f.nullable.cond('v', msg.valid)
        if f.is_array:
            et = f.struct.ctype if f.elem_is_struct else PRIMS[f.elem][0]
            out.append(p + '{')
            out.append(p + '    int32_t n;')
            out.append(p + '    if (kp_read_array_len(%s, %s, %s, &n))' % (R, flex, self.min_size(f.elem, flex)))
            out.append(p + '        return %s->err;' % R)
            if null_cond != '1':
                out.append(p + '    if (n < 0 && !(%s))' % null_cond)
                out.append(p + '        return KP_E_INVALID;')
            out.append(p + '    %s_count = n;' % x)
            out.append(p + '    %s = NULL;' % x)
            out.append(p + '    if (n > 0) {')
            out.append(p + '        %s = kp_arena_alloc(a, (size_t)n * sizeof(%s));' % (x, et))
            out.append(p + '        if (!%s)' % x)
            out.append(p + '            return KP_E_NOMEM;')
            out.append(p + '        for (int32_t i = 0; i < n; i++) {')
            if f.elem_is_struct:
                out.append(p + '            int rc = %s_decode_(%s, a, v, &%s[i]);' % (f.struct.ctype, R, x))
                out.append(p + '            if (rc)')
                out.append(p + '                return rc;')
            else:
                self.dec_value(f, f.elem, R, '%s[i]' % x, flex, '0', out, ind + 12)
            out.append(p + '        }')
            out.append(p + '    }')
            out.append(p + '}')
        elif f.elem_is_struct and f.struct_ptr:
            out.append(p + '{')
            if f.tagged is None:
                out.append(p + '    int8_t present = 1;')
                if not f.nullable.empty():
                    out.append(p + '    if (%s)' % null_cond)
                    out.append(p + '        if (kp_read_i8(%s, &present))' % R)
                    out.append(p + '            return %s->err;' % R)
                out.append(p + '    if (present < 0) {')
                out.append(p + '        %s = NULL;' % x)
                out.append(p + '    } else {')
            else:
                out.append(p + '    {')
            out.append(p + '        %s = kp_arena_alloc(a, sizeof(*%s));' % (x, x))
            out.append(p + '        if (!%s)' % x)
            out.append(p + '            return KP_E_NOMEM;')
            out.append(p + '        int rc = %s_decode_(%s, a, v, %s);' % (f.struct.ctype, R, x))
            out.append(p + '        if (rc)')
            out.append(p + '            return rc;')
            out.append(p + '    }')
            out.append(p + '}')
        else:
            self.dec_value(f, f.type, R, x, flex, null_cond, out, ind)

    def emit_decode(self, sd):
        msg = sd.msg
        c = self.c
        c.append('static int %s_decode_(kp_reader *r, kp_arena *a, int16_t v, %s *o)' % (sd.ctype, sd.ctype))
        c.append('{')
        c.append('    const int flex = %s;' % msg.flexible.cond('v', msg.valid))
        c.append('    (void)a;')
        c.append('    (void)v;')
        c.append('    (void)flex;')
        c.append('    %s_init(o);' % sd.ctype)
        for f in sd.fields:
            if f.tagged is not None:
                continue
            cond = f.versions.cond('v', msg.valid)
            if cond == '0':
                continue
            body = []
            self.dec_field(f, msg, 'r', 'o->' + f.c, self.flex_expr(f, msg), body, 8 if cond != '1' else 4)
            if cond != '1':
                c.append('    if (%s) {' % cond)
                c.extend(body)
                c.append('    }')
            else:
                c.extend(body)
        tagged = [f for f in sd.fields if f.tagged is not None]
        if not msg.flexible.intersect(msg.valid).empty():
            c.append('    if (flex) {')
            c.append('        uint32_t nt;')
            c.append('        if (kp_read_uvarint(r, &nt))')
            c.append('            return r->err;')
            c.append('        for (uint32_t t = 0; t < nt; t++) {')
            c.append('            uint32_t tag, sz;')
            c.append('            const uint8_t *tp;')
            c.append('            if (kp_read_uvarint(r, &tag) || kp_read_uvarint(r, &sz) || kp_read_raw(r, sz, &tp))')
            c.append('                return r->err;')
            if tagged:
                c.append('            kp_reader sub;')
                c.append('            kp_reader_init(&sub, tp, sz);')
                c.append('            switch (tag) {')
                for f in sorted(tagged, key=lambda f: f.tag):
                    c.append('            case %d:' % f.tag)
                    cond = f.versions.cond('v', msg.valid)
                    body = []
                    self.dec_field(f, msg, (lambda: '(&sub)')(), 'o->' + f.c, '1', body, 16)
                    c.append('                if (%s) {' % cond)
                    c.extend(body)
                    c.append('                }')
                    c.append('                break;')
                c.append('            default:')
                c.append('                break; /* unknown tags are skipped */')
                c.append('            }')
            else:
                c.append('            (void)tag;')
                c.append('            (void)tp;')
            c.append('        }')
            c.append('    }')
        c.append('    return r->err;')
        c.append('}')
        c.append('')

    # ---- encode -----------------------------------------------------------
    def enc_value(self, f, typ, W, x, flex, nullable_cond, out, ind):
        p = ' ' * ind
        if typ in PRIMS:
            if typ in ('string', 'bytes', 'records'):
                if nullable_cond != '1':
                    out.append(p + 'if (%s.len < 0 && !(%s))' % (x, nullable_cond))
                    out.append(p + '    return %s->err = KP_E_UNSUPPORTED;' % W)
                kind = 'string' if typ == 'string' else 'bytes'
                out.append(p + '%s ? kp_write_compact_%s(%s, %s) : kp_write_%s(%s, %s);' % (flex, kind, W, x, kind, W, x))
            elif typ == 'uuid':
                out.append(p + 'kp_write_uuid(%s, &%s);' % (W, x))
            else:
                out.append(p + '%s(%s, %s);' % (PRIMS[typ][2], W, x))
        else:
            out.append(p + '%s_encode_(%s, v, &%s);' % (f.struct.ctype, W, x))

    def enc_field(self, f, msg, W, x, flex, out, ind):
        p = ' ' * ind
        null_cond = f.nullable.cond('v', msg.valid)
        if f.is_array:
            if null_cond != '1':
                out.append(p + 'if (%s_count < 0 && !(%s))' % (x, null_cond))
                out.append(p + '    return %s->err = KP_E_UNSUPPORTED;' % W)
            out.append(p + 'kp_write_array_len(%s, %s, %s_count);' % (W, flex, x))
            out.append(p + 'for (int32_t i = 0; i < %s_count; i++) {' % x)
            if f.elem_is_struct:
                out.append(p + '    %s_encode_(%s, v, &%s[i]);' % (f.struct.ctype, W, x))
            else:
                self.enc_value(f, f.elem, W, '%s[i]' % x, flex, '0' if f.elem in ('string', 'bytes') else '1',
                               out, ind + 4)
            out.append(p + '}')
        elif f.elem_is_struct and f.struct_ptr:
            if f.tagged is None:
                if not f.nullable.empty():
                    out.append(p + 'if (%s)' % null_cond)
                    out.append(p + '    kp_write_i8(%s, %s ? 1 : -1);' % (W, x))
                    out.append(p + 'else if (!%s)' % x)
                else:
                    out.append(p + 'if (!%s)' % x)
                out.append(p + '    return %s->err = KP_E_UNSUPPORTED;' % W)
            out.append(p + 'if (%s)' % x)
            out.append(p + '    %s_encode_(%s, v, %s);' % (f.struct.ctype, W, x))
        else:
            self.enc_value(f, f.type, W, x, flex, null_cond, out, ind)

    def emit_encode(self, sd):
        msg = sd.msg
        c = self.c
        c.append('static int %s_encode_(kp_writer *w, int16_t v, const %s *o)' % (sd.ctype, sd.ctype))
        c.append('{')
        c.append('    const int flex = %s;' % msg.flexible.cond('v', msg.valid))
        c.append('    (void)v;')
        c.append('    (void)o;')
        c.append('    (void)flex;')
        for f in sd.fields:
            if f.tagged is not None:
                continue
            cond = f.versions.cond('v', msg.valid)
            x = 'o->' + f.c
            if cond != '1' and not f.ignorable:
                # Kafka refuses to drop a non-default value the version cannot carry.
                dflt = self.is_default_expr(f, x)
                if dflt != '1':
                    c.append('    if (!(%s) && !(%s))' % (cond, dflt))
                    c.append('        return w->err = KP_E_UNSUPPORTED;')
            if cond == '0':
                continue
            body = []
            self.enc_field(f, msg, 'w', x, self.flex_expr(f, msg), body, 8 if cond != '1' else 4)
            if cond != '1':
                c.append('    if (%s) {' % cond)
                c.extend(body)
                c.append('    }')
            else:
                c.extend(body)
        tagged = sorted([f for f in sd.fields if f.tagged is not None], key=lambda f: f.tag)
        if not msg.flexible.intersect(msg.valid).empty():
            c.append('    if (flex) {')
            if not tagged:
                c.append('        kp_write_uvarint(w, 0);')
            else:
                conds = []
                for f in tagged:
                    conds.append('(%s) && !(%s)' % (f.versions.cond('v', msg.valid), self.is_default_expr(f, 'o->' + f.c)))
                c.append('        uint32_t nt = 0;')
                for cd in conds:
                    c.append('        if (%s)' % cd)
                    c.append('            nt++;')
                c.append('        kp_write_uvarint(w, nt);')
                for f, cd in zip(tagged, conds):
                    c.append('        if (%s) {' % cd)
                    c.append('            kp_writer cw;')
                    c.append('            kp_writer_init_counting(&cw);')
                    body = []
                    self.enc_field(f, msg, '(&cw)', 'o->' + f.c, '1', body, 12)
                    c.extend(body)
                    c.append('            if (cw.err)')
                    c.append('                return w->err = cw.err;')
                    c.append('            kp_write_uvarint(w, %d);' % f.tag)
                    c.append('            kp_write_uvarint(w, (uint32_t)cw.len);')
                    body = []
                    self.enc_field(f, msg, 'w', 'o->' + f.c, '1', body, 12)
                    c.extend(body)
                    c.append('        }')
            c.append('    }')
        c.append('    return w->err;')
        c.append('}')
        c.append('')

    # ---- public entry points ---------------------------------------------
    def emit_public(self, m):
        sd = m.top
        vc = 'v >= %d && v <= %d' % (m.valid.lo, m.valid.hi)
        self.h.append('void %s_init(%s *o);' % (m.c, m.c))
        self.h.append('int %s_decode(kp_reader *r, kp_arena *a, int16_t version, %s *o);' % (m.c, m.c))
        self.h.append('int %s_encode(kp_writer *w, int16_t version, const %s *o);' % (m.c, m.c))
        self.h.append('size_t %s_size(int16_t version, const %s *o); /* 0 on error */' % (m.c, m.c))
        self.h.append('')
        c = self.c
        c.append('int %s_decode(kp_reader *r, kp_arena *a, int16_t v, %s *o)' % (m.c, m.c))
        c.append('{')
        c.append('    if (!(%s))' % vc)
        c.append('        return KP_E_VERSION;')
        c.append('    return %s_decode_(r, a, v, o);' % sd.ctype)
        c.append('}')
        c.append('')
        c.append('int %s_encode(kp_writer *w, int16_t v, const %s *o)' % (m.c, m.c))
        c.append('{')
        c.append('    if (!(%s))' % vc)
        c.append('        return w->err = KP_E_VERSION;')
        c.append('    return %s_encode_(w, v, o);' % sd.ctype)
        c.append('}')
        c.append('')
        c.append('size_t %s_size(int16_t v, const %s *o)' % (m.c, m.c))
        c.append('{')
        c.append('    kp_writer w;')
        c.append('    kp_writer_init_counting(&w);')
        c.append('    return %s_encode(&w, v, o) ? 0 : w.len;' % m.c)
        c.append('}')
        c.append('')
        # generic (void *) adapters for the tables
        c.append('static void %s_init_g(void *o) { %s_init(o); }' % (m.c, m.c))
        c.append('static int %s_decode_g(kp_reader *r, kp_arena *a, int16_t v, void *o) { return %s_decode(r, a, v, o); }'
                 % (m.c, m.c))
        c.append('static int %s_encode_g(kp_writer *w, int16_t v, const void *o) { return %s_encode(w, v, o); }'
                 % (m.c, m.c))
        c.append('')

    # ---- test support: fill and compare -----------------------------------
    def emit_test_support(self, sd):
        t = self.t
        msg = sd.msg
        t.append('static void %s_fill(%s *o, kp_arena *a, int16_t v, uint32_t *seed)' % (sd.ctype, sd.ctype))
        t.append('{')
        t.append('    (void)a;')
        t.append('    (void)v;')
        t.append('    (void)seed;')
        t.append('    %s_init(o);' % sd.ctype)
        for f in sd.fields:
            cond = f.versions.cond('v', msg.valid)
            if cond == '0':
                continue
            x = 'o->' + f.c
            t.append('    if (%s) {' % cond)
            null_cond = f.nullable.cond('v', msg.valid)
            if f.is_array:
                et = f.struct.ctype if f.elem_is_struct else PRIMS[f.elem][0]
                if null_cond != '0':
                    t.append('        if ((%s) && next_(seed) %% 5 == 0) {' % null_cond)
                    t.append('            %s_count = -1;' % x)
                    t.append('            %s = NULL;' % x)
                    t.append('        } else {')
                else:
                    t.append('        {')
                t.append('            int32_t n = 1 + (int32_t)(next_(seed) % 2);')
                t.append('            %s_count = n;' % x)
                t.append('            %s = kp_arena_alloc(a, (size_t)n * sizeof(%s));' % (x, et))
                t.append('            for (int32_t i = 0; i < n; i++) {')
                if f.elem_is_struct:
                    t.append('                %s_fill(&%s[i], a, v, seed);' % (f.struct.ctype, x))
                else:
                    t.append('                fill_%s_(&%s[i], a, seed);' % (f.elem, x))
                t.append('            }')
                t.append('        }')
            elif f.elem_is_struct:
                if f.struct_ptr:
                    t.append('        %s = kp_arena_alloc(a, sizeof(*%s));' % (x, x))
                    t.append('        %s_fill(%s, a, v, seed);' % (f.struct.ctype, x))
                else:
                    t.append('        %s_fill(&%s, a, v, seed);' % (f.struct.ctype, x))
            elif f.type in ('string', 'bytes', 'records'):
                t.append('        fill_%s_(&%s, a, seed);' % ('string' if f.type == 'string' else 'bytes', x))
                if null_cond != '0':
                    t.append('        if ((%s) && next_(seed) %% 5 == 0)' % null_cond)
                    t.append('            %s.len = -1, %s.p = NULL;' % (x, x))
            else:
                t.append('        fill_%s_(&%s, a, seed);' % (f.type, x))
            t.append('    }')
        t.append('}')
        t.append('')
        t.append('static int %s_equal(const %s *x, const %s *y)' % (sd.ctype, sd.ctype, sd.ctype))
        t.append('{')
        for f in sd.fields:
            a_, b_ = 'x->' + f.c, 'y->' + f.c
            if f.is_array:
                t.append('    if (%s_count != %s_count)' % (a_, b_))
                t.append('        return 0;')
                t.append('    for (int32_t i = 0; i < %s_count; i++)' % a_)
                if f.elem_is_struct:
                    t.append('        if (!%s_equal(&%s[i], &%s[i]))' % (f.struct.ctype, a_, b_))
                else:
                    t.append('        if (!eq_%s_(&%s[i], &%s[i]))' % (f.elem, a_, b_))
                t.append('            return 0;')
            elif f.elem_is_struct:
                if f.struct_ptr:
                    t.append('    if ((%s == NULL) != (%s == NULL) || (%s && !%s_equal(%s, %s)))' %
                             (a_, b_, a_, f.struct.ctype, a_, b_))
                else:
                    t.append('    if (!%s_equal(&%s, &%s))' % (f.struct.ctype, a_, b_))
                t.append('        return 0;')
            else:
                t.append('    if (!eq_%s_(&%s, &%s))' % ('string' if f.type == 'string' else
                                                       'bytes' if f.type in ('bytes', 'records') else f.type, a_, b_))
                t.append('        return 0;')
        t.append('    (void)x;')
        t.append('    (void)y;')
        t.append('    return 1;')
        t.append('}')
        t.append('')

    # ---- whole files ------------------------------------------------------
    def run(self, out):
        h, c, t = self.h, self.c, self.t
        h += ['/* Generated by kafka-proto/gen/kpgen.py from kafka-proto/spec. Do not edit. */',
              '#ifndef KP_MESSAGES_H', '#define KP_MESSAGES_H', '', '#include "wire.h"', '']
        c += ['/* Generated by kafka-proto/gen/kpgen.py from kafka-proto/spec. Do not edit. */',
              '#include "kp_messages.h"', '', '#include <string.h>', '']
        for m in self.msgs:
            for sd in m.order:
                self.emit_struct_decl(sd)
                if sd is not m.top:
                    h.append('void %s_init(%s *o);' % (sd.ctype, sd.ctype))
                    h.append('')
        for m in self.msgs:
            for sd in m.order:
                c.append('static int %s_decode_(kp_reader *r, kp_arena *a, int16_t v, %s *o);' % (sd.ctype, sd.ctype))
                c.append('static int %s_encode_(kp_writer *w, int16_t v, const %s *o);' % (sd.ctype, sd.ctype))
        c.append('')
        for m in self.msgs:
            for sd in m.order:
                self.emit_init(sd, sd is m.top)
                self.emit_decode(sd)
                self.emit_encode(sd)
            self.emit_public(m)
        self.emit_tables()
        h.append('#endif')
        self.emit_test_file()
        os.makedirs(out, exist_ok=True)
        for name, lines in (('kp_messages.h', h), ('kp_messages.c', c), ('kp_messages_test.c', t)):
            path = os.path.join(out, name)
            text = '\n'.join(lines) + '\n'
            # Rewrite only on change, so the build does not recompile needlessly.
            if not os.path.exists(path) or open(path).read() != text:
                with open(path, 'w') as fp:
                    fp.write(text)

    def api_const(self, key):
        base = self.apis[key][0].name[:-len('Request')]
        return 'KP_API_' + snake(base).upper()

    def emit_tables(self):
        h, c = self.h, self.c
        h += ['/* Every message (requests, responses, headers, data, internal records). */',
              'typedef struct kp_msg_desc {',
              '    const char *name;',
              '    const char *kind; /* request, response, header, data */',
              '    int16_t api_key;  /* -1 unless request/response */',
              '    int16_t min_version, max_version;',
              '    int16_t flexible_from; /* -1: never flexible */',
              '    size_t size;           /* sizeof the C struct */',
              '    void (*init)(void *o);',
              '    int (*decode)(kp_reader *r, kp_arena *a, int16_t version, void *o);',
              '    int (*encode)(kp_writer *w, int16_t version, const void *o);',
              '} kp_msg_desc;',
              '',
              'extern const kp_msg_desc kp_msgs[];',
              'extern const size_t kp_msg_count;',
              'const kp_msg_desc *kp_msg_lookup(const char *name);',
              '',
              '/* One entry per API key: the request and response descriptors and the',
              ' * listener kinds from the definitions. */',
              'typedef struct kp_api_desc {',
              '    int16_t key;',
              '    const char *name;',
              '    int16_t min_version, max_version;',
              '    int16_t flexible_from;',
              '    uint8_t broker_listener;     /* served by a broker to clients */',
              '    uint8_t latest_unstable;     /* newest version not yet stable */',
              '    const kp_msg_desc *request;',
              '    const kp_msg_desc *response;',
              '} kp_api_desc;',
              '',
              '/* API keys by name, from the definitions\' apiKey and name: code says',
              ' * KP_API_FETCH where it used to say 1. */',
              'enum kp_api_key {']
        for key in sorted(self.apis):
            h.append('    %s = %d,' % (self.api_const(key), key))
        consts = [self.api_const(k) for k in self.apis]
        if len(set(consts)) != len(consts):
            sys.exit('two API names map to one KP_API_ constant')
        h += ['};',
              '',
              '#define KP_API_KEY_MAX %d' % max(self.apis),
              'extern const kp_api_desc kp_apis[];',
              'extern const size_t kp_api_count;',
              'const kp_api_desc *kp_api_lookup(int16_t key); /* NULL for an unknown key */',
              '/* Header versions for an API version, per the protocol rules (ApiVersions',
              ' * responses always use response header v0). -1 when the key is unknown. */',
              'int kp_request_header_version(int16_t key, int16_t version);',
              'int kp_response_header_version(int16_t key, int16_t version);',
              '/* The response\'s ThrottleTimeMs (every quota\'s answer to the client) where',
              ' * the version carries it, else NULL; body is the API\'s response struct. */',
              'int32_t *kp_response_throttle_field(int16_t key, int16_t version, void *body);',
              '/* Sets it to ms: 1, or 0 (body untouched) when the version has no such field. */',
              'int kp_response_set_throttle(int16_t key, int16_t version, void *body, int32_t ms);',
              '']
        c.append('const kp_msg_desc kp_msgs[] = {')
        index = {}
        for i, m in enumerate(self.msgs):
            index[m.name] = i
            ff = m.flexible.lo if not m.flexible.empty() else -1
            c.append('    {"%s", "%s", %d, %d, %d, %d, sizeof(%s), %s_init_g, %s_decode_g, %s_encode_g},' % (
                m.name, m.kind, m.api_key if m.api_key is not None else -1, m.valid.lo, m.valid.hi, ff, m.c, m.c,
                m.c, m.c))
        c.append('};')
        c.append('const size_t kp_msg_count = sizeof(kp_msgs) / sizeof(kp_msgs[0]);')
        c.append('')
        c.append('const kp_msg_desc *kp_msg_lookup(const char *name)')
        c.append('{')
        c.append('    for (size_t i = 0; i < kp_msg_count; i++)')
        c.append('        if (strcmp(kp_msgs[i].name, name) == 0)')
        c.append('            return &kp_msgs[i];')
        c.append('    return NULL;')
        c.append('}')
        c.append('')
        c.append('const kp_api_desc kp_apis[] = {')
        for key in sorted(self.apis):
            req, resp = self.apis[key]
            if req.valid.lo != resp.valid.lo or req.valid.hi != resp.valid.hi:
                sys.exit('api %d: request and response versions differ' % key)
            ff = req.flexible.lo if not req.flexible.empty() else -1
            base = req.name[:-len('Request')]
            c.append('    {%s, "%s", %d, %d, %d, %d, %d, &kp_msgs[%d], &kp_msgs[%d]},' % (
                self.api_const(key), base, req.valid.lo, req.valid.hi, ff, 1 if 'broker' in req.listeners else 0,
                1 if req.unstable else 0, index[req.name], index[resp.name]))
        c.append('};')
        c.append('const size_t kp_api_count = sizeof(kp_apis) / sizeof(kp_apis[0]);')
        c.append('')
        c.append('const kp_api_desc *kp_api_lookup(int16_t key)')
        c.append('{')
        c.append('    static const kp_api_desc *by_key[KP_API_KEY_MAX + 1];')
        c.append('    static int ready;')
        c.append('    if (key < 0 || key > KP_API_KEY_MAX)')
        c.append('        return NULL;')
        c.append('    if (!ready) { /* idempotent: every thread computes the same table */')
        c.append('        for (size_t i = 0; i < kp_api_count; i++)')
        c.append('            by_key[kp_apis[i].key] = &kp_apis[i];')
        c.append('        __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);')
        c.append('    }')
        c.append('    return by_key[key];')
        c.append('}')
        c.append('')
        c.append('int kp_request_header_version(int16_t key, int16_t version)')
        c.append('{')
        c.append('    const kp_api_desc *d = kp_api_lookup(key);')
        c.append('    if (!d)')
        c.append('        return -1;')
        c.append('    if (d->flexible_from >= 0 && version >= d->flexible_from)')
        c.append('        return 2;')
        c.append('    /* ControlledShutdown v0 predates the client id. */')
        c.append('    return (key == %s && version == 0) ? 0 : 1;' % self.api_const(7))
        c.append('}')
        c.append('')
        c.append('int kp_response_header_version(int16_t key, int16_t version)')
        c.append('{')
        c.append('    const kp_api_desc *d = kp_api_lookup(key);')
        c.append('    if (!d)')
        c.append('        return -1;')
        c.append('    if (key == %s) /* always v0, see the protocol guide */' % self.api_const(18))
        c.append('        return 0;')
        c.append('    return (d->flexible_from >= 0 && version >= d->flexible_from) ? 1 : 0;')
        c.append('}')
        self.emit_throttle_field()

    def emit_throttle_field(self):
        # From the definitions, so an API or version added to the spec is
        # covered without anyone listing it.
        c = self.c
        c.append('')
        c.append('int32_t *kp_response_throttle_field(int16_t key, int16_t version, void *body)')
        c.append('{')
        c.append('    switch (key) {')
        for key in sorted(self.apis):
            resp = self.apis[key][1]
            f = next((f for f in resp.top.fields if f.name == 'ThrottleTimeMs'), None)
            if f is None:
                continue
            if f.type != 'int32' or f.tagged is not None:
                sys.exit('%s: ThrottleTimeMs is not a plain int32' % resp.path)
            c.append('    case %s:' % self.api_const(key))
            c.append('        return (%s) ? &((%s *)body)->%s : NULL;' % (
                f.versions.cond('version', resp.valid), resp.c, f.c))
        c.append('    default:')
        c.append('        return NULL;')
        c.append('    }')
        c.append('}')
        c.append('')
        c.append('int kp_response_set_throttle(int16_t key, int16_t version, void *body, int32_t ms)')
        c.append('{')
        c.append('    int32_t *f = kp_response_throttle_field(key, version, body);')
        c.append('    if (!f)')
        c.append('        return 0;')
        c.append('    *f = ms;')
        c.append('    return 1;')
        c.append('}')

    def emit_test_file(self):
        t = self.t
        body = self.t[:]
        del self.t[:]
        t += ['/* Generated by kafka-proto/gen/kpgen.py: test support for the round-trip tests.',
              ' * kp_test_fill() populates every field a version carries with non-default',
              ' * values; kp_test_equal() compares two decoded messages field by field. */',
              '#include "kp_messages.h"', '#include "kp_messages_test.h"', '', '#include <string.h>', '',
              '/* Not every primitive type occurs in every role. */',
              '#pragma GCC diagnostic ignored "-Wunused-function"', '',
              'static uint32_t next_(uint32_t *s)',
              '{',
              '    *s = *s * 1103515245u + 12345u;',
              '    return (*s >> 8) & 0xffffff;',
              '}',
              '#define FILL_INT(T, N) static void fill_##N##_(T *x, kp_arena *a, uint32_t *s) { (void)a; *x = (T)(next_(s) | 1); }',
              'FILL_INT(int8_t, int8)', 'FILL_INT(int16_t, int16)', 'FILL_INT(uint16_t, uint16)',
              'FILL_INT(int32_t, int32)', 'FILL_INT(uint32_t, uint32)',
              'static void fill_int64_(int64_t *x, kp_arena *a, uint32_t *s) { (void)a; *x = ((int64_t)next_(s) << 32) | next_(s); }',
              'static void fill_float64_(double *x, kp_arena *a, uint32_t *s) { (void)a; *x = next_(s) / 7.0; }',
              'static void fill_bool_(uint8_t *x, kp_arena *a, uint32_t *s) { (void)a; (void)s; *x = 1; }',
              'static void fill_uuid_(kp_uuid *x, kp_arena *a, uint32_t *s) { (void)a; for (int i = 0; i < 16; i++) x->b[i] = (uint8_t)next_(s); }',
              'static void fill_string_(kp_str *x, kp_arena *a, uint32_t *s)',
              '{',
              '    int n = 1 + (int)(next_(s) % 12);',
              '    char *p = kp_arena_alloc(a, (size_t)n);',
              '    for (int i = 0; i < n; i++)',
              '        p[i] = (char)(\'a\' + next_(s) % 26);',
              '    x->p = p;',
              '    x->len = n;',
              '}',
              'static void fill_bytes_(kp_bytes *x, kp_arena *a, uint32_t *s)',
              '{',
              '    int n = (int)(next_(s) % 40);',
              '    uint8_t *p = kp_arena_alloc(a, (size_t)n);',
              '    for (int i = 0; i < n; i++)',
              '        p[i] = (uint8_t)next_(s);',
              '    x->p = p;',
              '    x->len = n;',
              '}',
              '#define EQ_INT(T, N) static int eq_##N##_(const T *x, const T *y) { return *x == *y; }',
              'EQ_INT(int8_t, int8)', 'EQ_INT(int16_t, int16)', 'EQ_INT(uint16_t, uint16)', 'EQ_INT(int32_t, int32)',
              'EQ_INT(uint32_t, uint32)', 'EQ_INT(int64_t, int64)', 'EQ_INT(uint8_t, bool)',
              'static int eq_float64_(const double *x, const double *y) { return memcmp(x, y, sizeof(*x)) == 0; }',
              'static int eq_uuid_(const kp_uuid *x, const kp_uuid *y) { return memcmp(x, y, sizeof(*x)) == 0; }',
              'static int eq_string_(const kp_str *x, const kp_str *y)',
              '{',
              '    return x->len == y->len && (x->len <= 0 || memcmp(x->p, y->p, (size_t)x->len) == 0);',
              '}',
              'static int eq_bytes_(const kp_bytes *x, const kp_bytes *y)',
              '{',
              '    return x->len == y->len && (x->len <= 0 || memcmp(x->p, y->p, (size_t)x->len) == 0);',
              '}',
              '']
        # prototypes
        for m in self.msgs:
            for sd in m.order:
                t.append('static void %s_fill(%s *o, kp_arena *a, int16_t v, uint32_t *seed);' % (sd.ctype, sd.ctype))
                t.append('static int %s_equal(const %s *x, const %s *y);' % (sd.ctype, sd.ctype, sd.ctype))
        t.append('')
        for m in self.msgs:
            for sd in m.order:
                self.emit_test_support(sd)
        for m in self.msgs:
            t.append('static void %s_fill_g(void *o, kp_arena *a, int16_t v, uint32_t *s) { %s_fill(o, a, v, s); }'
                     % (m.c, m.c))
            t.append('static int %s_equal_g(const void *x, const void *y) { return %s_equal(x, y); }' % (m.c, m.c))
        t.append('static const struct {')
        t.append('    const char *name;')
        t.append('    void (*fill)(void *o, kp_arena *a, int16_t v, uint32_t *seed);')
        t.append('    int (*equal)(const void *x, const void *y);')
        t.append('} kp_test_table[] = {')
        for m in self.msgs:
            t.append('    {"%s", %s_fill_g, %s_equal_g},' % (m.name, m.c, m.c))
        t.append('};')
        t.append('')
        t.append('void kp_test_fill(const kp_msg_desc *d, void *o, kp_arena *a, int16_t v, uint32_t seed)')
        t.append('{')
        t.append('    kp_test_table[d - kp_msgs].fill(o, a, v, &seed);')
        t.append('}')
        t.append('')
        t.append('int kp_test_equal(const kp_msg_desc *d, const void *x, const void *y)')
        t.append('{')
        t.append('    return kp_test_table[d - kp_msgs].equal(x, y);')
        t.append('}')


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--spec', required=True)
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    msgs = []
    mdir = os.path.join(args.spec, 'messages')
    for root, _dirs, files in sorted(os.walk(mdir)):
        for fn in sorted(files):
            if fn.endswith('.json'):
                path = os.path.join(root, fn)
                with open(path) as fp:
                    msgs.append(Message(json.load(fp), path))
    names = {}
    for m in msgs:
        if m.name in names:
            sys.exit('duplicate message name %s (%s, %s)' % (m.name, m.path, names[m.name]))
        names[m.name] = m.path
    msgs.sort(key=lambda m: m.name)
    apis = {}
    for m in msgs:
        if m.api_key is None:
            continue
        pair = apis.setdefault(m.api_key, [None, None])
        pair[0 if m.kind == 'request' else 1] = m
    for k, (rq, rs) in apis.items():
        if rq is None or rs is None:
            sys.exit('api %d lacks a request or response' % k)
    Gen(msgs, apis).run(args.out)


if __name__ == '__main__':
    main()
