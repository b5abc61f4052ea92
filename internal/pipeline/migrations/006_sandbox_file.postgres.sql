-- On PostgreSQL the sandbox's table stays in the one database: nothing to do.
SELECT 1;
