//! libpq's password sources, which tokio-postgres leaves to the caller: `PGPASSWORD`, then
//! the password file (`PGPASSFILE`, else `~/.pgpass`), lines `host:port:db:user:password`
//! with `*` wildcards and `\:`/`\\` escapes. The password is never printed.

use std::path::PathBuf;

/// The password libpq would use for this connection, if any source has one.
pub(crate) fn lookup(host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    if let Ok(p) = std::env::var("PGPASSWORD") {
        return Some(p);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let text = std::fs::read_to_string(file).ok()?;
    find(&text, host, port, db, user)
}

fn find(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    // libpq matches a Unix socket connection against "localhost".
    let host = if host.starts_with('/') { "localhost" } else { host };
    let port = port.to_string();
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).find_map(|l| {
        let f = fields(l);
        let ok =
            f.len() == 5 && [host, port.as_str(), db, user].iter().zip(&f).all(|(want, got)| got == "*" || got == want);
        ok.then(|| f[4].clone())
    })
}

fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.last_mut().unwrap().push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn wildcards_escapes_and_first_match() {
        let f = "# comment\nother:5432:*:u:no\n*:5433:db:u:p\\:w\\\\d\n*:*:*:*:fallback\n";
        assert_eq!(find(f, "127.0.0.1", 5433, "db", "u").as_deref(), Some("p:w\\d"));
        assert_eq!(find(f, "127.0.0.1", 5432, "db", "u").as_deref(), Some("fallback"));
        assert_eq!(find(f, "/run/pg", 5433, "db", "u").as_deref(), Some("p:w\\d"));
        assert_eq!(find("h:1:d:u:p", "x", 1, "d", "u"), None);
    }
}
