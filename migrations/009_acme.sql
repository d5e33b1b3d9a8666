-- Reserved for the ACME part (certificates); replaced by its own 009_acme.sql.
SELECT 1;
