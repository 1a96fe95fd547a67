-- workspace_verdicts: verification over the whole pool: samples per verifier, settings
-- hash and verdict (unverified samples have no row in verify).
SELECT verifier, settings_hash, verdict, count(*) AS samples
FROM verify
GROUP BY ALL
ORDER BY ALL;
