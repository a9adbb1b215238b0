"""Helper of scripts/official-client-check.sh: reads a PostgreSQL or MySQL/MariaDB replica.

usage: oracle_db.py sql URL SQL          tab-separated rows of one statement
       oracle_db.py layout URL           one line per column of every replica table: table,
                                         position, name, type (PostgreSQL `format_type` with
                                         enum labels, also of array elements; MySQL
                                         `column_type`), NOT NULL, and the primary key
       oracle_db.py rows URL             one line per row of every replica table, sorted
       oracle_db.py ids URL              each replica table's identity (PostgreSQL: its oid;
                                         MySQL: its InnoDB table id): a rebuilt table gets
                                         another
Replica tables: every table of the namespaces' schemas (PostgreSQL) or named `ns__table`
(MySQL), not the client's bookkeeping (`instructure_dap`).
"""
import asyncio
import sys
import urllib.parse

NAMESPACES = ("canvas", "canvas_logs", "catalog", "new_quizzes")


def mysql_connect(url):
    import pymysql

    u = urllib.parse.urlparse(url)
    return pymysql.connect(host=u.hostname, port=u.port or 3306,
                           user=urllib.parse.unquote(u.username or ""),
                           password=urllib.parse.unquote(u.password or ""),
                           database=u.path.lstrip("/") or None, autocommit=True)


def mysql_sql(url, sql):
    with mysql_connect(url).cursor() as cur:
        cur.execute(sql)
        return [list(row) for row in cur.fetchall()]


def mysql_tables(cur):
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                "ORDER BY 1")
    return [name for (name,) in cur.fetchall()
            if name.split("__", 1)[0] in NAMESPACES and "__" in name]


def mysql_layout(url):
    cur = mysql_connect(url).cursor()
    tables = set(mysql_tables(cur))
    cur.execute("SELECT table_name, ordinal_position, column_name, column_type, is_nullable, "
                "column_key FROM information_schema.columns WHERE table_schema = DATABASE() "
                "ORDER BY 1, 2")
    out = []
    for name, pos, column, ctype, nullable, key in cur.fetchall():
        if name in tables:
            out.append([name, pos, column, ctype, "null" if nullable == "YES" else "not null",
                        "key" if key == "PRI" else ""])
    return out


def mysql_value(v):
    if v is None:
        return "NULL"
    if isinstance(v, (bytes, bytearray)):
        return "0x" + bytes(v).hex()
    return repr(v) if not isinstance(v, str) else repr(v)


def mysql_rows(url):
    cur = mysql_connect(url).cursor()
    out = []
    for name in mysql_tables(cur):
        cur.execute(f"SELECT * FROM `{name}`")
        out.extend([name, "(" + ",".join(mysql_value(v) for v in row) + ")"]
                   for row in cur.fetchall())
    return sorted(out)


def mysql_ids(url):
    # InnoDB's table id: a table dropped and made again, or copied by an ALTER, gets a new one
    # (an ALTER of its comment alone keeps it; its create_time does not).
    cur = mysql_connect(url).cursor()
    tables = set(mysql_tables(cur))
    for view in ("INNODB_SYS_TABLES", "INNODB_TABLES"):  # MariaDB, MySQL 8
        try:
            cur.execute(f"SELECT name, table_id FROM information_schema.{view} "
                        "WHERE name LIKE CONCAT(DATABASE(), '/%') ORDER BY 1")
            break
        except Exception:
            continue
    return [[name.split("/", 1)[1], table_id] for name, table_id in cur.fetchall()
            if name.split("/", 1)[1] in tables]


async def pg_connect(url):
    import asyncpg

    return await asyncpg.connect(url)


async def pg_sql(url, sql):
    conn = await pg_connect(url)
    return [list(row) for row in await conn.fetch(sql)]


PG_TABLES = """SELECT c.oid, n.nspname || '.' || c.relname FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[]) ORDER BY 2"""

PG_LAYOUT = """SELECT n.nspname || '.' || c.relname, a.attnum, a.attname,
  format_type(a.atttypid, a.atttypmod)
    || coalesce(' {' || (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                         FROM pg_enum e
                         WHERE e.enumtypid = CASE WHEN t.typelem <> 0 THEN t.typelem
                                                  ELSE t.oid END) || '}', ''),
  CASE WHEN a.attnotnull THEN 'not null' ELSE 'null' END,
  CASE WHEN a.attnum = ANY(coalesce(k.conkey, '{}')) THEN 'key' ELSE '' END
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'
  WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[]) AND a.attnum > 0
    AND NOT a.attisdropped ORDER BY 1, 2"""


async def pg_layout(url):
    conn = await pg_connect(url)
    return [list(row) for row in await conn.fetch(PG_LAYOUT, list(NAMESPACES))]


async def pg_rows(url):
    conn = await pg_connect(url)
    out = []
    for _, name in await conn.fetch(PG_TABLES, list(NAMESPACES)):
        ns, table = name.split(".", 1)
        rows = await conn.fetch(f'SELECT t::text FROM "{ns}"."{table}" t')
        out.extend([name, text] for (text,) in rows)
    return sorted(out)


async def pg_ids(url):
    conn = await pg_connect(url)
    return [[name, oid] for oid, name in await conn.fetch(PG_TABLES, list(NAMESPACES))]


def main():
    command, url = sys.argv[1], sys.argv[2]
    pg = url.startswith("postgres")
    if command == "sql":
        rows = asyncio.run(pg_sql(url, sys.argv[3])) if pg else mysql_sql(url, sys.argv[3])
    elif command == "layout":
        rows = asyncio.run(pg_layout(url)) if pg else mysql_layout(url)
    elif command == "rows":
        rows = asyncio.run(pg_rows(url)) if pg else mysql_rows(url)
    elif command == "ids":
        rows = asyncio.run(pg_ids(url)) if pg else mysql_ids(url)
    else:
        sys.exit(f"unknown command {command}")
    for row in rows:
        print("\t".join("" if v is None else str(v).replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
                        for v in row))


main()
