-- The product catalog per tenant (issue 14): what the assistant may quote.
-- `ctower catalog import --tenant T products.csv` replaces a tenant's catalog in one
-- transaction. Search is Portuguese full text (the `portuguese` stemmer) over an
-- accent-folded copy of name, category and description, so "vinilico" finds "vinílico".
-- (unaccent/pg_trgm are not in every Postgres build we run; translate() is.)

CREATE FUNCTION ct_fold(text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT translate(lower($1), 'áàâãäéèêëíìîïóòôõöúùûüçñ', 'aaaaaeeeeiiiiooooouuuucn')
$$;

CREATE TABLE products (
    tenant_id    text NOT NULL REFERENCES tenants(id),
    sku          text NOT NULL CHECK (length(sku) BETWEEN 1 AND 100),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    category     text,
    description  text,
    price        numeric(12, 2) NOT NULL CHECK (price >= 0),
    unit         text NOT NULL DEFAULT 'un',   -- what the price is per: m², un, caixa, ...
    search       tsvector GENERATED ALWAYS AS (
                     setweight(to_tsvector('portuguese', ct_fold(name)), 'A')
                     || setweight(to_tsvector('portuguese', ct_fold(coalesce(category, ''))), 'B')
                     || setweight(to_tsvector('portuguese', ct_fold(coalesce(description, ''))), 'C')) STORED,
    imported_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, sku)
);
CREATE INDEX products_search_idx ON products USING gin (search);
