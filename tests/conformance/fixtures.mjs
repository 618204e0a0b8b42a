// Fixtures of requests and answers recorded from the live service (docs/origin.md).

/** Fixture P, step P0 (seed write). */
export const P0 = {
  distance_metric: 'cosine_distance',
  schema: {
    title: { type: 'string', fuzzy: true },
    text: { type: 'string', full_text_search: true },
    published_at: 'datetime',
    tags: '[]string',
    sparse_vector: { type: '{}f16', sparse_knn: { distance_metric: 'dot_product' } },
  },
  upsert_rows: [
    { id: 1, vector: [1.0, 0.0], sparse_vector: { 0: 1.0, 2: 0.5 }, category: 'mammal', public: 1, title: 'walrus den', text: 'walrus narwhal arctic mammal', score: 10, tags: ['arctic', 'mammal'], published_at: '2026-05-30T00:00:00Z' },
    { id: 2, vector: [0.0, 1.0], sparse_vector: { 1: 1.0 }, category: 'fish', public: 0, title: 'reef fish', text: 'pufferfish clownfish swordfish', score: 7, tags: ['fish'], published_at: '2026-05-29T00:00:00Z' },
    { id: 3, vector: [0.8, 0.2], sparse_vector: { 0: 0.8, 2: 0.2 }, category: 'mammal', public: 1, title: 'quick walrus', text: 'quick walrus sea mammal', score: 5, tags: ['mammal', 'sea'], published_at: '2026-05-31T00:00:00Z' },
  ],
};

/** W-02: column upsert of rows 4, 5. */
export const P1_COLUMNS = {
  upsert_columns: {
    id: [4, 5],
    vector: [[0.5, 0.5], [0.4, 0.6]],
    sparse_vector: [{ 0: 0.4 }, { 1: 0.6 }],
    title: ['column walrus', 'blocked walrus'],
    category: ['mammal', 'mammal'],
    public: [1, 1],
    text: ['column walrus mammal', 'blocked walrus mammal'],
    score: [2, 20],
    tags: [['mammal'], ['mammal']],
    published_at: ['2026-05-28T00:00:00Z', '2026-05-27T00:00:00Z'],
  },
};

/** W-03: conditional upsert with $ref_new. */
export const P2_COND_UPSERT = {
  upsert_rows: [
    { id: 4, vector: [0.5, 0.5], sparse_vector: { 0: 0.5 }, title: 'condition pass', category: 'mammal', public: 1, text: 'condition pass mammal', score: 3, tags: ['mammal'], published_at: '2026-05-28T00:00:00Z' },
    { id: 5, vector: [0.4, 0.6], sparse_vector: { 1: 0.6 }, title: 'condition blocked', category: 'mammal', public: 1, text: 'condition blocked mammal', score: 10, tags: ['mammal'], published_at: '2026-05-27T00:00:00Z' },
    { id: 6, vector: [0.3, 0.7], sparse_vector: { 1: 0.7 }, title: 'condition insert', category: 'mammal', public: 1, text: 'condition insert mammal', score: 1, tags: ['mammal'], published_at: '2026-05-26T00:00:00Z' },
  ],
  upsert_condition: ['score', 'Lt', { $ref_new: 'score' }],
  return_affected_ids: true,
};

/** W-04: conditional patch (columns). */
export const P3_COND_PATCH = {
  patch_columns: { id: [4, 6], title: ['patched column', 'patched insert'], score: [4, 100] },
  patch_condition: ['public', 'Eq', 1],
  return_affected_ids: true,
};

/** W-05: conditional delete. */
export const P4_COND_DELETE = { deletes: [5], delete_condition: ['score', 'Gte', 20], return_affected_ids: true };

/** W-07 / W-08. */
export const P5_PATCH_BY_FILTER = {
  patch_by_filter: { filters: ['category', 'Eq', 'fish'], patch: { category: 'reef', score: 8 } },
  return_affected_ids: true,
};
export const P6_DELETE_BY_FILTER = { delete_by_filter: ['score', 'Lt', 6], return_affected_ids: true };

/** Fixture F (fuzz namespace, 6 rows). */
const F_ROWS = [
  [1, [1, 0], { 0: 1, 2: 0.5 }, 'mammal', 1, 'alpha', 'walrus narwhal arctic mammal', ['walrus', 'narwhal', 'mammal'], 10, ['arctic', 'mammal'], [1, 5], '2026-05-30T00:00:00Z'],
  [2, [0, 1], { 1: 1 }, 'fish', 0, 'bravo', 'pufferfish clownfish swordfish', ['pufferfish', 'clownfish', 'swordfish'], 7, ['fish'], [3, 7], '2026-05-29T00:00:00Z'],
  [3, [0.8, 0.2], { 0: 0.8, 2: 0.2 }, 'mammal', 1, 'charlie', 'quick walrus sea mammal', ['quick', 'walrus', 'mammal'], 5, ['mammal', 'sea'], [2, 9], '2026-05-31T00:00:00Z'],
  [4, [0.25, 0.75], { 1: 0.9, 3: 0.4 }, 'bird', 1, 'delta', 'swift falcon sky hunter', ['swift', 'falcon', 'sky'], 12, ['bird', 'sky'], [4, 8], '2026-05-28T00:00:00Z'],
  [5, [0.6, 0.4], { 0: 0.3, 2: 0.9 }, 'mammal', 0, 'echo', 'brown fox quick den', ['brown', 'fox', 'quick'], 3, ['mammal', 'forest'], [0, 3], '2026-05-27T00:00:00Z'],
  [6, [0.1, 0.9], { 1: 0.7, 3: 0.1 }, 'fish', 1, 'foxtrot', 'reef fish coral clownfish', ['reef', 'fish', 'coral'], 9, ['fish', 'reef'], [6, 9], '2026-05-26T00:00:00Z'],
];
const F_COLS = ['id', 'vector', 'sparse_vector', 'category', 'public', 'name', 'text', 'tokens', 'score', 'tags', 'scores', 'published_at'];

export const F_SCHEMA = {
  text: { type: 'string', full_text_search: true },
  tokens: { type: '[]string', full_text_search: { tokenizer: 'pre_tokenized_array' } },
  name: { type: 'string', regex: true },
  published_at: 'datetime',
  tags: '[]string',
  scores: '[]int',
  sparse_vector: { type: '{}f16', sparse_knn: { distance_metric: 'dot_product' } },
};

export const F_ROW_OBJECTS = F_ROWS.map((r) => Object.fromEntries(F_COLS.map((c, i) => [c, r[i]])));

export const F_WRITE = { distance_metric: 'cosine_distance', schema: F_SCHEMA, upsert_rows: F_ROW_OBJECTS };

/** The same six rows as columns (for the columnar-write cases). */
export const F_WRITE_COLUMNS = {
  distance_metric: 'cosine_distance',
  schema: F_SCHEMA,
  upsert_columns: Object.fromEntries(F_COLS.map((c, i) => [c, F_ROWS.map((r) => r[i])])),
};

/** FL-05: filter → matching ids on F. */
export const F_FILTERS = [
  [['category', 'Eq', 'mammal'], [1, 3, 5]],
  [['category', 'NotEq', 'fish'], [1, 3, 4, 5]],
  [['category', 'In', ['mammal', 'bird']], [1, 3, 4, 5]],
  [['category', 'NotIn', ['fish']], [1, 3, 4, 5]],
  [['tags', 'Contains', 'mammal'], [1, 3, 5]],
  [['tags', 'NotContains', 'reef'], [1, 2, 3, 4, 5]],
  [['tags', 'ContainsAny', ['reef', 'sky']], [4, 6]],
  [['tags', 'NotContainsAny', ['desert']], [1, 2, 3, 4, 5, 6]],
  [['score', 'Lt', 10], [2, 3, 5, 6]],
  [['score', 'Lte', 9], [2, 3, 5, 6]],
  [['score', 'Gt', 5], [1, 2, 4, 6]],
  [['score', 'Gte', 7], [1, 2, 4, 6]],
  [['scores', 'AnyLt', 2], [1, 5]],
  [['scores', 'AnyLte', 3], [1, 2, 3, 5]],
  [['scores', 'AnyGt', 8], [3, 6]],
  [['scores', 'AnyGte', 9], [3, 6]],
  [['name', 'Glob', 'c*'], [3]],
  [['name', 'NotGlob', 'z*'], [1, 2, 3, 4, 5, 6]],
  [['name', 'IGlob', 'E*'], [5]],
  [['name', 'NotIGlob', 'z*'], [1, 2, 3, 4, 5, 6]],
  [['name', 'Regex', '^(alpha|delta)$'], [1, 4]],
  [['text', 'ContainsAllTokens', 'quick mammal'], [3]],
  [['text', 'ContainsAnyToken', 'coral narwhal'], [1, 6]],
  [['text', 'ContainsTokenSequence', 'sea mammal'], [3]],
  [['tokens', 'ContainsAllTokens', ['walrus', 'mammal']], [1, 3]],
  [['tokens', 'ContainsAnyToken', ['reef', 'narwhal']], [1, 6]],
  [['tokens', 'ContainsTokenSequence', ['walrus', 'narwhal']], [1]],
  [['And', [['category', 'Eq', 'mammal'], ['public', 'Eq', 1]]], [1, 3]],
  [['Or', [['category', 'Eq', 'bird'], ['tags', 'Contains', 'reef']]], [4, 6]],
  [['Not', ['category', 'Eq', 'fish']], [1, 3, 4, 5]],
];
