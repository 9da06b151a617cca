-- Full-text index of knowledge-base articles (rowid = kb_articles.id). The trigram tokenizer matches any
-- substring of three or more characters, so Chinese text (no spaces between words) is searchable too;
-- shorter queries fall back to LIKE in the application.
CREATE VIRTUAL TABLE kb_search USING fts5(title, keywords, body, tokenize = 'trigram');
