/**
 * The analytic workload of bench/advisor-eval.ts: a retail star schema written for this project — a
 * fact table of sales (2M rows by default) and five dimensions (date, customer, product, store,
 * promotion), generated reproducibly from generate_series with fixed arithmetic (no random()), and 22
 * statements as pg_stat_statements stores them (constants replaced by `$n`), with how often each runs:
 * joins, group-bys, range and IN predicates, top-N, and the normalised texts the server refuses as
 * they are (`extract($1 from ...)`, `between $1 - $2 and $3 + $4`, a GROUP BY repeating an output
 * expression with its own parameters).
 */

export function starSchemaSql(factRows: number): string[] {
  return [
    `CREATE TABLE dim_date (date_id int PRIMARY KEY, day date NOT NULL, year int NOT NULL, quarter int NOT NULL, month int NOT NULL,
       day_of_week int NOT NULL, is_holiday boolean NOT NULL)`,
    `INSERT INTO dim_date SELECT g, d, extract(year FROM d)::int, extract(quarter FROM d)::int, extract(month FROM d)::int,
       extract(isodow FROM d)::int, (extract(day FROM d)::int = 1 AND extract(month FROM d)::int IN (1, 5)) OR (extract(month FROM d)::int = 12 AND extract(day FROM d)::int = 25)
     FROM generate_series(1, 2922) g, LATERAL (SELECT date '2018-01-01' + g - 1 AS d) x`,
    `CREATE TABLE dim_customer (customer_id int PRIMARY KEY, name text NOT NULL, segment text NOT NULL, region text NOT NULL,
       country text NOT NULL, signup_date date NOT NULL)`,
    `INSERT INTO dim_customer SELECT g, 'customer ' || g, (ARRAY['consumer','corporate','home office','small business','public'])[1 + g % 5],
       'region ' || (g * 7 % 10), 'country ' || (g * 13 % 25), date '2015-01-01' + (g * 37 % 3650)
     FROM generate_series(1, 100000) g`,
    `CREATE TABLE dim_product (product_id int PRIMARY KEY, name text NOT NULL, category text NOT NULL, brand text NOT NULL, unit_price numeric(10,2) NOT NULL)`,
    `INSERT INTO dim_product SELECT g, 'product ' || g, 'category ' || (g % 20), 'brand ' || (g * 31 % 200), 1 + (g * 7919 % 50000) / 100.0
     FROM generate_series(1, 20000) g`,
    `CREATE TABLE dim_store (store_id int PRIMARY KEY, city text NOT NULL, region text NOT NULL, store_type text NOT NULL)`,
    `INSERT INTO dim_store SELECT g, 'city ' || (g % 150), 'region ' || (g % 10), (ARRAY['mall','street','outlet','online'])[1 + g % 4]
     FROM generate_series(1, 500) g`,
    `CREATE TABLE dim_promotion (promo_id int PRIMARY KEY, name text NOT NULL, channel text NOT NULL, discount_pct numeric(5,2) NOT NULL)`,
    `INSERT INTO dim_promotion SELECT g, 'promotion ' || g, (ARRAY['email','tv','radio','web','in store'])[1 + g % 5], (g % 30) + 0.5
     FROM generate_series(1, 300) g`,
    `CREATE TABLE fact_sales (sale_id bigint PRIMARY KEY, date_id int NOT NULL, customer_id int NOT NULL, product_id int NOT NULL,
       store_id int NOT NULL, promo_id int, quantity int NOT NULL, amount numeric(12,2) NOT NULL, discount numeric(4,2) NOT NULL,
       sold_at timestamp NOT NULL)`,
    // Skewed like real sales: customers and products follow a power law (a few buy/sell most), dates
    // grow over time; promo_id is NULL for four sales in five. Every value is arithmetic on g.
    `INSERT INTO fact_sales
     SELECT g, dd, 1 + floor(100000 * power(((g::int8 * 7919) % 1000003) / 1000003.0, 3))::int,
            1 + floor(20000 * power(((g::int8 * 104729) % 999983) / 999983.0, 2))::int,
            1 + (g::int8 * 31 % 500)::int, CASE WHEN g % 5 = 0 THEN 1 + (g / 5 % 300)::int END,
            1 + (g % 10)::int, ((g::int8 * 7907) % 100000) / 100.0, ((g::int8 * 13) % 11) / 100.0,
            timestamp '2018-01-01' + (dd - 1) * interval '1 day' + (g % 86400) * interval '1 second'
     FROM generate_series(1, ${factRows}) g,
          LATERAL (SELECT 1 + floor(2922 * sqrt(((g::int8 * 15485863) % 1000033) / 1000033.0))::int AS dd) d`,
    'ANALYZE',
  ];
}

export const STAR_WORKLOAD = `
-- calls: 500
select s.sale_id, s.amount, s.sold_at from fact_sales s where s.customer_id = $1 order by s.sold_at desc limit $2;
-- calls: 200
select count(*), sum(amount) from fact_sales where product_id = $1 and date_id between $2 and $3;
-- calls: 100
select d.day, sum(s.amount) from fact_sales s join dim_date d on d.date_id = s.date_id where s.store_id = $1 and d.year = $2 and d.month = $3 group by d.day order by d.day;
-- calls: 10
select p.category, extract($1 from s.sold_at) as y, sum(s.amount) from fact_sales s join dim_product p on p.product_id = s.product_id where s.sold_at >= $2 and s.sold_at < $3 group by p.category, y;
-- calls: 20
select p.name, sum(s.quantity) as q from fact_sales s join dim_store st on st.store_id = s.store_id join dim_product p on p.product_id = s.product_id join dim_date d on d.date_id = s.date_id where st.region = $1 and d.year = $2 and d.quarter = $3 group by p.name order by q desc limit $4;
-- calls: 50
select pr.channel, avg(s.discount), count(*) from fact_sales s join dim_promotion pr on pr.promo_id = s.promo_id where s.promo_id in ($1, $2, $3) group by pr.channel;
-- calls: 20
select sum(amount * discount) from fact_sales where discount between $1 - $2 and $3 + $4 and quantity < $5 and date_id between $6 and $7;
-- calls: 30
select c.name, s.amount from fact_sales s join dim_customer c on c.customer_id = s.customer_id where c.segment = $1 and c.region = $2 and s.amount > $3 order by s.amount desc limit $4;
-- calls: 40
SELECT date_trunc($1, sold_at) AS m, count(*) FROM fact_sales WHERE store_id = $2 GROUP BY date_trunc($3, sold_at) ORDER BY 1;
-- calls: 30
select p.brand, sum(s.amount) from fact_sales s join dim_product p on p.product_id = s.product_id where p.brand = $1 and s.sold_at > $2 - $3 group by p.brand;
-- calls: 300
select count(*) from fact_sales where customer_id = $1 and store_id = $2;
-- calls: 1000
select * from fact_sales where sale_id = $1;
-- calls: 100
select product_id, name from dim_product where category = $1 and unit_price between $2 and $3 order by unit_price limit $4;
-- calls: 50
select count(*) from dim_customer where country = $1 and signup_date >= $2;
-- calls: 60
select s.store_id, sum(s.amount) as r from fact_sales s where s.date_id = $1 group by s.store_id order by r desc limit $2;
-- calls: 5
select d.day, count(*) from fact_sales s join dim_date d on d.date_id = s.date_id where d.is_holiday and d.year = $1 group by d.day;
-- calls: 40
select quantity, count(*) from fact_sales where product_id in ($1, $2, $3, $4) group by quantity;
-- calls: 50
select sale_id, amount from fact_sales where sold_at >= $1 and amount > $2 order by sold_at desc limit $3;
-- calls: 200
select sum(amount), count(*), max(sold_at) from fact_sales where customer_id = $1;
-- calls: 10
select st.store_type, avg(s.amount) from fact_sales s join dim_store st on st.store_id = s.store_id where s.date_id between $1 and $2 group by st.store_type;
-- calls: 20
select count(*) from fact_sales where store_id = $1 and promo_id is null and date_id > $2;
-- calls: 2000
insert into fact_sales (sale_id, date_id, customer_id, product_id, store_id, promo_id, quantity, amount, discount, sold_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10);
`;
