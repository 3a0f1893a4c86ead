//! `tracer protect` on ssh-agent sockets, with the real ssh-agent, ssh-add and sshd: root on
//! the user's agent, the owner from another session, an agent forwarded by sshd.
// Every test crate gets the whole dev-dependency list; each uses part of it.
#![allow(unused_crate_dependencies)]

use std::{os::unix::fs::MetadataExt as _, process::Command};

use protect_env::{Agent, Home, Protect, USER, about, s};
use serde_json::Value;
use tracer_tests::TempDir;

mod guard_env;
mod protect_env;

#[test]
fn root_on_the_users_agent_is_reported_the_users_own_use_is_not() {
    let home = Home::new("protect-agent");
    let agent = Agent::start(&home);
    let p = Protect::start(&home, &[]);
    let sock = agent.sock.to_str().unwrap();
    let list = |c: &mut Command| {
        let o = c.env("SSH_AUTH_SOCK", sock).output().unwrap();
        assert!(o.status.success(), "ssh-add -l: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(list(home.user_cmd(&["ssh-add", "-l"]).env("SSH_AUTH_SOCK", sock)).contains("ED25519"));
    assert!(list(Command::new("ssh-add").arg("-l")).contains("ED25519"), "root can use the user's agent");
    // A relative name from the socket's directory reaches the same agent.
    let o = Command::new("ssh-add").arg("-l").current_dir(home.dir.path()).env("SSH_AUTH_SOCK", "agent.sock").output();
    assert!(o.unwrap().status.success());
    let (events, stderr) = p.stop();
    // Only this agent's events count: other tests' agents (the same account's, a forwarded
    // one used without a login UID) are watched too.
    let hits = about(&events, "ssh-agent", &agent.sock);
    assert_eq!(hits.len(), 2, "root's two ssh-add -l, not the user's: {hits:#?}\n{stderr}");
    for e in &hits {
        assert_eq!(e["uid"], 0, "the user's own ssh-add is not reported");
        assert_eq!(e["comm"], "ssh-add");
        assert_eq!(e["owner_uid"], home.uid);
        assert_eq!(e["argv"], serde_json::json!(["ssh-add", "-l"]));
        assert!(s(e, "reason").contains(&format!("uid 0 is not the agent owner's {}", home.uid)), "{e}");
    }
    assert_eq!(s(&hits[1], "path"), "agent.sock", "the name as given");
    // The agent itself is owned by the user and was found by its listener.
    assert_eq!(std::fs::metadata(&agent.sock).unwrap().uid(), home.uid);
}

/// With --agent-session, the owner's own ssh-add from another login session is reported too
/// (each `user_cmd` is a new login, so a new audit session); without it, it is not (above).
#[test]
fn agent_session_reports_the_owner_from_another_session() {
    let home = Home::new("protect-session");
    let agent = Agent::start(&home);
    let p = Protect::start(&home, &["--agent-session"]);
    let o = home.user_cmd(&["ssh-add", "-l"]).env("SSH_AUTH_SOCK", &agent.sock).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    let (events, stderr) = p.stop();
    let hits: Vec<Value> =
        about(&events, "ssh-agent", &agent.sock).into_iter().filter(|e| e["uid"] == home.uid).collect();
    assert_eq!(hits.len(), 1, "{events:#?}\n{stderr}");
    let reason = s(&hits[0], "reason");
    assert!(reason.contains("session") && !reason.contains("uid"), "only the session differs: {reason}");
}

/// An agent forwarded by the real sshd (`ssh -A`): the socket sshd makes in /tmp/ssh-*/ is
/// found by its listener (an sshd binary, in the server's network namespace) and every
/// connect to it is reported, naming who connected.
#[test]
fn forwarded_agent_connects_are_reported() {
    use guard_env::{Netns, Sshd, sh};
    let home = Home::new("protect-fwd");
    // The account logs in by key with a shell; "*": no password, but not locked for sshd.
    sh(&["usermod", "-s", "/bin/sh", "-p", "*", USER]);
    let auth = home.ssh().join("authorized_keys");
    std::fs::copy(home.ssh().join("id_ed25519.pub"), &auth).unwrap();
    let agent = Agent::start(&home);
    let ns = Netns::new("pfwd");
    let dir = TempDir::new("protect-sshd");
    let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    let extra = format!(
        "PubkeyAuthentication yes\nAuthorizedKeysFile {}\nStrictModes no\nAllowAgentForwarding yes\n",
        auth.display()
    );
    let _sshd = Sshd::start_with(&ns, &dir, "127.0.0.1", true, (&ns, lo), &extra);
    let p = Protect::start(&home, &[]);
    let ssh = |remote: &str| {
        let o = ns
            .command("setpriv")
            .args(["--reuid", &home.uid.to_string(), "--regid", &home.gid.to_string(), "--clear-groups"])
            .args(["ssh", "-A", "-p", "2222", "-i"])
            .arg(home.key())
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "LogLevel=ERROR", &format!("{USER}@127.0.0.1"), remote])
            .env("SSH_AUTH_SOCK", &agent.sock)
            .env("HOME", home.dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "ssh: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // The forwarded socket lives as long as the session: wait past a rescan before using it.
    let e = p.until(
        || assert!(ssh("sleep 0.5; ssh-add -l").contains("ED25519")),
        |e| e["key"] == "ssh-agent" && s(e, "target").starts_with("/tmp/ssh-"),
    );
    let _ = p.stop();
    assert_eq!(e["comm"], "ssh-add");
    assert_eq!(e["uid"], home.uid);
    assert_eq!(e["owner_uid"], home.uid);
    assert!(s(&e, "reason").contains("forwarded agent"), "{e}");
    assert!(s(&e, "target").contains("/agent."), "{e}");
}

/// Root reaches the user's agent through a link it owns and, right after the connect (the
/// same shell, before the tracer reads the event: it is stopped meanwhile), `then` changes
/// the link. The event names the agent the kernel saw connected, never what the link names
/// by the time it is read. Returns the events and stderr.
fn connect_through_link_then(then: &str, tag: &str) -> (Home, Agent, std::path::PathBuf, Vec<Value>, String) {
    let home = Home::new(tag);
    let agent = Agent::start(&home);
    let links = TempDir::new("protect-link");
    // Root's own agent: a connect to it by root is its owner's, never reported.
    let own = Agent::start_root(&links.file("own.sock"));
    let link = links.file("link");
    std::os::unix::fs::symlink(&agent.sock, &link).unwrap();
    let p = Protect::start(&home, &[]);
    let script = format!(
        "SSH_AUTH_SOCK={link} ssh-add -l || exit 9; {then}",
        link = link.display(),
        then = then.replace("OWN", own.sock.to_str().unwrap()).replace("LINK", link.to_str().unwrap())
    );
    let o = p.paused(|| Command::new("sh").args(["-c", &script]).output().unwrap());
    assert!(o.status.success(), "{script}: {}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ED25519"), "the user's agent was reached");
    // The link no longer leads to the user's agent (root's own, or nothing).
    let after = Command::new("ssh-add").arg("-l").env("SSH_AUTH_SOCK", &link).output().unwrap();
    assert!(!String::from_utf8_lossy(&after.stdout).contains("ED25519"), "{after:?}");
    let (events, stderr) = p.stop();
    drop(own);
    (home, agent, link, events, stderr)
}

fn assert_root_on_the_users_agent(home: &Home, agent: &Agent, link: &std::path::Path, events: &[Value], stderr: &str) {
    let hits = about(events, "ssh-agent", &agent.sock);
    assert_eq!(hits.len(), 1, "root's ssh-add -l through the link: {events:#?}\n{stderr}");
    let e = &hits[0];
    assert_eq!(e["uid"], 0);
    assert_eq!(e["owner_uid"], home.uid);
    assert_eq!(s(e, "path"), link.to_str().unwrap(), "the name as given");
    assert!(s(e, "reason").contains(&format!("uid 0 is not the agent owner's {}", home.uid)), "{e}");
    let through_link = events.iter().filter(|e| e["key"] == "ssh-agent" && s(e, "path") == link.to_str().unwrap());
    assert_eq!(through_link.count(), 1, "one event, about the user's agent: {events:#?}");
}

#[test]
fn a_link_repointed_to_roots_own_agent_after_the_connect_still_names_the_users() {
    let (home, agent, link, events, stderr) = connect_through_link_then("ln -sfn OWN LINK", "protect-swap");
    assert_root_on_the_users_agent(&home, &agent, &link, &events, &stderr);
}

#[test]
fn a_link_removed_after_the_connect_still_names_the_users_agent() {
    let (home, agent, link, events, stderr) = connect_through_link_then("rm LINK", "protect-unlink");
    assert!(!link.exists());
    assert_root_on_the_users_agent(&home, &agent, &link, &events, &stderr);
}

/// A kernel without `unix_sock.peer` in its BTF: the tracer says so and still runs (keys are
/// still watched), and agent connects are simply not seen.
#[test]
fn without_unix_sock_peer_agents_degrade_with_a_warning() {
    let home = Home::new("protect-forget");
    let agent = Agent::start(&home);
    let p = Protect::start_env(&home, &[], &[("TRACER_FORGET_FIELDS", "unix_sock.peer")]);
    assert!(p.stderr().contains("kernel lacks unix_sock.peer"), "{}", p.stderr());
    let o = Command::new("ssh-add").arg("-l").env("SSH_AUTH_SOCK", &agent.sock).output().unwrap();
    assert!(o.status.success());
    home.as_user(&["cat", home.key().to_str().unwrap()]);
    let (events, _) = p.stop();
    assert!(about(&events, "ssh-agent", &agent.sock).is_empty(), "{events:#?}");
    assert_eq!(about(&events, "ssh-key", &home.key()).len(), 1, "{events:#?}");
}
