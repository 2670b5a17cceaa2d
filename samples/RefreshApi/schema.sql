-- Seed 003's LTREE-style hierarchy, as plain parent links: entities, and three materialized views over them.
-- Idempotent: the sample runs it at every start.
CREATE TABLE IF NOT EXISTS entities (
    id        int PRIMARY KEY,
    parent_id int REFERENCES entities,
    name      text NOT NULL
);

-- 5,000 entities, ten children per parent.
INSERT INTO entities (id, parent_id, name)
SELECT i, CASE WHEN i = 1 THEN NULL ELSE (i - 2) / 10 + 1 END, 'entity ' || i
  FROM generate_series(1, 5000) AS i
ON CONFLICT (id) DO NOTHING;

-- Every (entity, ancestor) pair with its depth.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_entity_ancestors AS
    WITH RECURSIVE anc AS (
        SELECT id, parent_id AS ancestor_id, 1 AS depth FROM entities WHERE parent_id IS NOT NULL
        UNION ALL
        SELECT a.id, e.parent_id, a.depth + 1 FROM anc a JOIN entities e ON e.id = a.ancestor_id WHERE e.parent_id IS NOT NULL)
    SELECT id, ancestor_id, depth FROM anc;
CREATE UNIQUE INDEX IF NOT EXISTS mv_entity_ancestors_key ON mv_entity_ancestors (id, ancestor_id);

-- How many descendants each entity has.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_descendant_counts AS
    SELECT ancestor_id AS id, count(*) AS descendants FROM mv_entity_ancestors GROUP BY ancestor_id;
CREATE UNIQUE INDEX IF NOT EXISTS mv_descendant_counts_key ON mv_descendant_counts (id);

-- One row of statistics over the hierarchy.
CREATE MATERIALIZED VIEW IF NOT EXISTS mv_entity_hierarchy_stats AS
    SELECT count(DISTINCT e.id) AS entities, coalesce(max(a.depth), 0) AS max_depth, count(a.*) AS ancestor_links
      FROM entities e LEFT JOIN mv_entity_ancestors a ON a.id = e.id;
