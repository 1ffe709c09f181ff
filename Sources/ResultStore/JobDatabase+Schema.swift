import Foundation
import GRDB
import Jobs
import MQTT
import StoreClient

extension JobDatabase {
    /// The schema's history. Append migrations; never edit a shipped one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs") { db in
            try db.execute(sql: """
                CREATE TABLE jobs (
                    id           TEXT PRIMARY KEY NOT NULL,
                    model        TEXT NOT NULL DEFAULT '',
                    version      INTEGER,
                    status       TEXT NOT NULL
                                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'expired')),
                    top          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(top)),
                    error        TEXT,
                    worker       TEXT,
                    queued_at    INTEGER,
                    started_at   INTEGER,
                    finished_at  INTEGER,
                    inference_ms REAL,
                    attempts     INTEGER NOT NULL DEFAULT 0,
                    updated_at   INTEGER NOT NULL
                )
                """)
            // Retention purges and counts scan by status and finish time.
            try db.execute(sql: "CREATE INDEX jobs_status_finished_at ON jobs (status, finished_at)")
        }
        migrator.registerMigration("v2: pending requests") { db in
            // The queue of record: every accepted request until its job ends,
            // with the time by which a result is due (its lease).
            try db.execute(sql: """
                CREATE TABLE pending (
                    id          TEXT PRIMARY KEY NOT NULL,
                    model       TEXT NOT NULL,
                    payload     BLOB NOT NULL,
                    deliveries  INTEGER NOT NULL DEFAULT 1,
                    lease_until INTEGER NOT NULL
                )
                """)
            try db.execute(sql: "CREATE INDEX pending_lease_until ON pending (lease_until)")
        }
        migrator.registerMigration("v3: leases from start, holders, expiry") { db in
            // `lease_until` now means: for a job no worker has started, when to
            // publish it again unless a live worker reports holding it; for a
            // started one, when its attempt is over. `deliveries` counts
            // publications; started attempts are `jobs.attempts`.
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN started_at INTEGER")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN holder TEXT")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN expires_at INTEGER")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN last_error TEXT")
            try db.execute(sql: "CREATE INDEX pending_expires_at ON pending (expires_at)")
        }
        migrator.registerMigration("v4: requests kept as they came") { db in
            // `payload` is now the message's bytes as they came, published again unchanged on
            // `topic` with `properties` (a LedgerEntry.StoredProperties JSON); `version` and
            // `reply_topic` are read once, on receipt. Rows from before held the request as
            // JSON for the model's service topic: they become exactly that message.
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN topic TEXT NOT NULL DEFAULT ''")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN properties TEXT NOT NULL DEFAULT '{}'")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN version INTEGER")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN reply_topic TEXT")
            try db.execute(sql: "ALTER TABLE pending ADD COLUMN received_at INTEGER NOT NULL DEFAULT 0")
            let json = LedgerEntry.StoredProperties.encode(MQTTProperties(contentType: "application/json"))
            let update = try db.makeStatement(sql: """
                UPDATE pending SET topic = ?, properties = ?, version = ?, reply_topic = ?, received_at = ? WHERE id = ?
                """)
            for row in try Row.fetchAll(db, sql: "SELECT id, model, payload FROM pending") {
                let fields = (try? JSONSerialization.jsonObject(with: row["payload"] as Data)) as? [String: Any]
                let version = fields?["version"] as? Int
                let topic = Topics.requests(model: row["model"], version: version.map(Int64.init))
                try update.execute(arguments: [topic, json, version, fields?["reply_topic"] as? String,
                                               Clock.nowMillis(), row["id"] as String])
            }
        }
        migrator.registerMigration("v5: health") { db in
            // One row the readiness probe writes, to prove the database takes writes.
            try db.execute(sql: "CREATE TABLE health (id INTEGER PRIMARY KEY, checked_at INTEGER NOT NULL)")
        }
        migrator.registerMigration("v6: cancelled jobs, listing") { db in
            // SQLite cannot change a CHECK constraint in place: the table is rebuilt with
            // `cancelled` allowed, and an index serves the newest-first listing.
            let columns = "id, model, version, status, top, error, worker, queued_at, started_at, finished_at, inference_ms, attempts, updated_at"
            try db.execute(sql: """
                CREATE TABLE jobs_v6 (
                    id           TEXT PRIMARY KEY NOT NULL,
                    model        TEXT NOT NULL DEFAULT '',
                    version      INTEGER,
                    status       TEXT NOT NULL
                                 CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'expired', 'cancelled')),
                    top          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(top)),
                    error        TEXT,
                    worker       TEXT,
                    queued_at    INTEGER,
                    started_at   INTEGER,
                    finished_at  INTEGER,
                    inference_ms REAL,
                    attempts     INTEGER NOT NULL DEFAULT 0,
                    updated_at   INTEGER NOT NULL
                );
                INSERT INTO jobs_v6 (\(columns)) SELECT \(columns) FROM jobs;
                DROP TABLE jobs;
                ALTER TABLE jobs_v6 RENAME TO jobs;
                CREATE INDEX jobs_status_finished_at ON jobs (status, finished_at);
                CREATE INDEX jobs_listed ON jobs (\(listedAt), id);
                """)
        }
        return migrator
    }
}
