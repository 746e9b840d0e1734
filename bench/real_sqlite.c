/* A real program: Debian's sqlite3 command-line shell runs a generated SQL
 * script on an in-memory database, the way a dump is loaded and queried: `rows *
 * scale` single-row INSERT statements (each parsed and prepared: many small,
 * short-lived allocations), then indexes, grouped and joined queries, sorting,
 * string building, updates and deletes. Its output (every query's result) goes
 * into the checksum.
 *
 *   real_sqlite scale=1 rows=40000 seed=1
 */
#include "bench_child.h"

static const char *const words[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
                                    "iota", "kappa", "lambda", "omicron", "sigma", "omega"};

static void generate(struct bench_text *t, unsigned rows, struct bench_rng *rng)
{
    const unsigned nwords = sizeof words / sizeof words[0];
    bench_text_add(t, "CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, city TEXT, score REAL);\n"
                      "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, item TEXT, qty INTEGER, price REAL, note TEXT);\n"
                      "BEGIN;\n");
    unsigned customers = rows / 20 + 1;
    for (unsigned c = 1; c <= customers; c++)
        bench_text_add(t, "INSERT INTO customer VALUES(%u, '%s %s', '%s', %u.%02u);\n", c, words[bench_range(rng, 0, nwords - 1)],
                       words[bench_range(rng, 0, nwords - 1)], words[bench_range(rng, 0, 6)], (unsigned)bench_range(rng, 0, 999),
                       (unsigned)bench_range(rng, 0, 99));
    for (unsigned r = 1; r <= rows; r++) {
        unsigned len = (unsigned)bench_range(rng, 0, 3);
        bench_text_add(t, "INSERT INTO orders(customer, item, qty, price, note) VALUES(%u, '%s-%u', %u, %u.%02u, '",
                       (unsigned)bench_range(rng, 1, customers), words[bench_range(rng, 0, nwords - 1)],
                       (unsigned)bench_range(rng, 1, 500), (unsigned)bench_range(rng, 1, 20), (unsigned)bench_range(rng, 1, 300),
                       (unsigned)bench_range(rng, 0, 99));
        for (unsigned w = 0; w < len; w++) bench_text_add(t, "%s%s", w ? " " : "", words[bench_range(rng, 0, nwords - 1)]);
        bench_text_add(t, "');\n");
    }
    bench_text_add(t,
        "COMMIT;\n"
        "CREATE INDEX orders_customer ON orders(customer);\n"
        "CREATE INDEX orders_item ON orders(item, qty);\n"
        "SELECT count(*), sum(qty), round(sum(qty * price), 2) FROM orders;\n"
        "SELECT c.city, count(*), sum(o.qty), round(avg(o.price), 4) FROM orders o JOIN customer c ON c.id = o.customer "
        "GROUP BY c.city ORDER BY c.city;\n"
        "SELECT item, count(*) AS n FROM orders GROUP BY item ORDER BY n DESC, item LIMIT 20;\n"
        "SELECT c.name, group_concat(o.item, ',') FROM customer c JOIN orders o ON o.customer = c.id "
        "WHERE c.id %% 97 = 1 GROUP BY c.id ORDER BY c.id;\n"
        "SELECT length(group_concat(note || '/' || item, ';')) FROM (SELECT note, item FROM orders ORDER BY price DESC, id);\n"
        "UPDATE orders SET note = upper(note) || ' (' || qty || ')' WHERE qty %% 3 = 0;\n"
        "DELETE FROM orders WHERE id %% 7 = 0;\n"
        "SELECT count(*), sum(length(note)), max(note) FROM orders;\n"
        "SELECT customer, count(DISTINCT item) FROM orders GROUP BY customer HAVING count(*) > 25 ORDER BY 2 DESC, 1 LIMIT 10;\n"
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < %u) "
        "SELECT count(*), sum(length(printf('%%08d-%%s', x, hex(x * x)))) FROM n;\n", rows);
}

int main(int argc, char **argv)
{
    struct bench_arg args[] = {{"scale", 1, 0}, {"rows", 40000, 0}, {"seed", 1, 0}};
    size_t nargs = sizeof args / sizeof args[0];
    bench_parse_args(argc, argv, args, nargs);
    unsigned rows = (unsigned)bench_scaled(bench_arg_value(args, nargs, "rows"), bench_arg_value(args, nargs, "scale"), 1);
    struct bench_rng rng;
    bench_rng_seed(&rng, (uint64_t)bench_arg_value(args, nargs, "seed"));

    const char *dir = bench_scratch_make("sqlite");
    char script[8192];
    snprintf(script, sizeof script, "%s/script.sql", dir);
    struct bench_text text = {0};
    generate(&text, rows, &rng);
    bench_write_file(script, text.data, text.length);

    uint64_t t0 = bench_now_ns();
    char *command[] = {"sqlite3", "-batch", "-bail", ":memory:", NULL};
    uint64_t checksum = bench_run_hashed(command, script);
    uint64_t elapsed = bench_now_ns() - t0;
    bench_scratch_remove();

    bench_result_begin("real_sqlite", elapsed, checksum);
    printf(",\"rows\":%u,\"script_bytes\":%zu", rows, text.length);
    bench_result_end();
    free(text.data);
    return 0;
}
