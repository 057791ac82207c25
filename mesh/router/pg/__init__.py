"""The PostgreSQL backend of the router's store (LLMAAS_DATABASE_URL=postgresql://...).

Same `Store` protocol and semantics as the embedded SQLite store (mesh.router.store): the
schema comes from the ordered SQL files in `migrations/`, applied at start under an advisory
lock; the audit chain is one chain for every router writing to the database (appends are
serialised by a transaction-scoped advisory lock) and its keyed head is anchored in the
database itself (`audit_anchor`), where every router and `audit verify` find it.
"""
