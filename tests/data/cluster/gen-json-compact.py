#!/usr/bin/python3
# Regenerates json-compact.tsv: each line is "<input JSON text>\t<what Python's
# json.dumps(json.loads(input), separators=(',', ':')) writes>\t<what plain
# json.dumps(json.loads(input)) writes>".  The compact form is how Patroni 3.0.2's
# DCS writers serialise; the spaced one is patronictl edit-config's config value,
# patroni.dynamic.json and the REST API.  Inputs must not contain tabs or newlines.
import json
import sys

CASES = [
    '{}', '[]', 'null', 'true', 'false', '0', '-1', '"x"',
    '{"b":1,"a":2}',
    '{"a":1,"b":2,"a":3}',
    ' { "a" : [ 1 , 2 ] ,\r "b" : { } } ',
    '{"url":"http://127.0.0.1:8008/patroni","esc":"\\/"}',
    '{"a":"\u00e9\u00fc\u00df","b":"\u2028\u20ac","c":"\U0001f600"}',
    '{"e":"\\u00e9","s":"\\ud83d\\ude00","z":"\\u0000"}',
    '{"c":"\\n\\t\\r\\b\\f\\u001f\\u007f\\"\\\\ \'"}',
    '[0,9223372036854775807,-9223372036854775808,67109000]',
    '[1.0,100.0,1e16,1e15,1e-5,0.0001,0.1,1.5e300,-0.0,0.0,2.5e-7,1e22]',
    '[1.2345678901234568e+17,1.7976931348623157e308,5e-324,0.30000000000000004,1E+100,-1.5]',
    '[3.14159,1e-7,123456.789,9007199254740993.0,0.000123]',
    '[NaN,Infinity,-Infinity]',
    '{"x":{"y":[[],{}]},"z":null,"t":true,"f":false}',
    '{"ttl":30,"postgresql":{"parameters":{"archive_command":"wal-g wal-push %p"}}}',
]

for c in CASES:
    assert '\t' not in c and '\n' not in c
    v = json.loads(c)
    sys.stdout.write(c + '\t' + json.dumps(v, separators=(',', ':')) + '\t' + json.dumps(v) + '\n')
