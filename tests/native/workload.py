"""A deterministic Python workload for the preloaded-python test: json, re,
sqlite3 (in memory) and threads, all allocating through the interpreter's malloc.
The test runs it with and without libkonfiscator.so and requires equal output."""
import hashlib
import json
import re
import sqlite3
import threading


def digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


records = [
    {
        "id": i,
        "name": "item-%d" % i,
        "tags": ["t%d" % j for j in range(i % 7)],
        "value": i * 1.5,
        "nested": {"square": i * i, "text": "x" * (i % 50)},
    }
    for i in range(5000)
]
text = json.dumps(records, sort_keys=True)
assert json.loads(text) == records
print("json", len(text), digest(text))

ids = re.findall(r'"name": "item-(\d+)"', text)
print("re.findall", len(ids), sum(int(i) for i in ids))
rewritten = re.sub(r"t(\d)", lambda m: "T" + m.group(1) * 3, text)
print("re.sub", len(rewritten), digest(rewritten))
words = re.split(r"[^a-z]+", rewritten.lower())
print("re.split", len(words), len(set(words)))

db = sqlite3.connect(":memory:")
db.execute("create table items (id integer primary key, name text, value real, tags integer, body text)")
db.executemany(
    "insert into items values (?, ?, ?, ?, ?)",
    [(r["id"], r["name"], r["value"], len(r["tags"]), json.dumps(r)) for r in records],
)
db.execute("create index items_by_tags on items (tags)")
for row in db.execute("select tags, count(*), sum(value), max(length(body)) from items group by tags order by tags"):
    print("sql", row)
joined = db.execute(
    "select count(*) from items a join items b on a.tags = b.tags and a.id < b.id where a.id % 50 = 0"
).fetchone()
print("sql join", joined)
db.close()

results = [None] * 8


def work(k):
    table = {}
    for i in range(20000):
        key = "%d:%d:%s" % (k, i, "y" * (i % 13))
        table[key] = [i] * (i % 5)
        if i % 3 == 0:
            table.pop("%d:%d:%s" % (k, i // 2, "y" * ((i // 2) % 13)), None)
    results[k] = (len(table), sum(len(v) for v in table.values()))


threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("threads", results)
