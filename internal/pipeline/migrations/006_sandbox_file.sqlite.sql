-- On SQLite the sandbox keeps its messages in sandbox.db (see
-- sandbox_migrations); its table leaves the main database.
DROP TABLE IF EXISTS sandbox_messages;
