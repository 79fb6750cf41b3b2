/**
 * A small TPC-H-like pair of tables and a workload file of normalised statements of the kinds
 * pg_stat_statements writes and the server refuses as they are (issue 17): `extract($1 from ...)`,
 * untyped parameters in arithmetic, a GROUP BY repeating an output expression with its own
 * parameters. Plus one statement naming a column that does not exist and one that does not parse:
 * those two are listed, never planned, and never stop the others.
 */
export const ORDERS_SCHEMA = `
  CREATE TABLE public.orders (
    o_orderkey int PRIMARY KEY, o_custkey int NOT NULL, o_orderdate date NOT NULL,
    o_orderpriority text NOT NULL, o_totalprice numeric(15,2) NOT NULL);
  CREATE TABLE public.lineitem (
    l_orderkey int NOT NULL, l_linenumber int NOT NULL, l_partkey int NOT NULL, l_quantity numeric(15,2) NOT NULL,
    l_extendedprice numeric(15,2) NOT NULL, l_discount numeric(15,2) NOT NULL, l_shipdate date NOT NULL,
    l_shipmode text NOT NULL, l_returnflag char(1) NOT NULL, PRIMARY KEY (l_orderkey, l_linenumber));
  INSERT INTO public.orders
    SELECT g, g % 997, date '1992-01-01' + (g * 7919 % 2400), (ARRAY['1-URGENT','2-HIGH','3-MEDIUM','4-NOT SPECIFIED','5-LOW'])[1 + g % 5], (g % 50000) / 10.0
    FROM generate_series(1, 15000) g;
  INSERT INTO public.lineitem
    SELECT o, n, (o * 31 + n) % 2000, 1 + (o + n) % 50, ((o + n) % 90000) / 9.0, ((o * n) % 11) / 100.0,
           date '1992-01-02' + ((o * 7919 + n * 13) % 2500), (ARRAY['AIR','MAIL','SHIP','RAIL','TRUCK','FOB','REG AIR'])[1 + (o + n) % 7],
           (ARRAY['A','N','R'])[1 + (o * n) % 3]
    FROM generate_series(1, 15000) o, generate_series(1, 4) n;
  ANALYZE public.orders;
  ANALYZE public.lineitem;`;

export const ORDERS_WORKLOAD = `-- Captured from pg_stat_statements (normalised texts).
-- calls: 40
select sum(l_extendedprice * l_discount) as revenue from lineitem where l_shipdate >= date $1 and l_shipdate < date $2 + interval $3 year and l_discount between $4 - $5 and $6 + $7 and l_quantity < $8;

-- calls: 20
select extract($1 from o_orderdate) as o_year, sum(l_extendedprice * ($2 - l_discount)) as amount
  from lineitem, orders where o_orderkey = l_orderkey and l_shipmode in ($3, $4) and o_orderdate between $5 - $6 and $7 + $8
  group by o_year order by o_year desc;

-- calls: 200
-- mean_ms: 4.5
SELECT DATE_TRUNC($1, o_orderdate) AS month, COUNT(*) FROM orders WHERE o_custkey = $2 GROUP BY DATE_TRUNC($3, o_orderdate) ORDER BY 1;

-- calls: 300
select o_orderkey, o_totalprice from orders where o_custkey = $1 and o_orderdate > current_date - $2 order by o_orderdate desc limit $3;

-- weight: 2.5
select l_returnflag, count(*) from lineitem where l_shipdate <= date '1998-12-01' - interval '90 days' and l_quantity * 2 - 1 > 10 group by 1;

-- calls: 10
select * from lineitem where l_nosuch = $1;

select from where;

-- calls: 50
update orders set o_orderpriority = $1 where o_orderkey = $2;
`;
