//! iptables enforcement compatible with fail2ban's `iptables-multiport` / `iptables` actions:
//! chain `f2b-<jail>` ending in RETURN, one `-s IP -j REJECT` rule per ban (ip6tables for IPv6),
//! and a jump from INPUT for the jail's tcp ports. iptables has no timeouts: the daemon's timer
//! (`Guard::tick`) lifts the bans.

use std::net::IpAddr;

use crate::fw::{CommandRunner, Firewall, FirewallError, FwBan};
use crate::ports::PortSpec;

#[derive(Debug, Clone)]
pub struct IptablesFirewall {
    runner: CommandRunner,
    chain: String,
    input: String,
    ports: PortSpec,
    multiport: bool,
}

impl IptablesFirewall {
    /// `jail` names the chain (`f2b-sshd`), `input` is the chain jumped from (fail2ban's `chain`).
    pub fn new(runner: CommandRunner, jail: &str, input: &str, ports: PortSpec, multiport: bool) -> Self {
        IptablesFirewall { runner, chain: format!("f2b-{jail}"), input: input.into(), ports, multiport }
    }

    pub fn chain(&self) -> &str {
        &self.chain
    }

    fn bin(v4: bool) -> &'static str {
        if v4 { "iptables" } else { "ip6tables" }
    }

    fn reject(v4: bool) -> &'static str {
        if v4 { "icmp-port-unreachable" } else { "icmp6-port-unreachable" }
    }

    fn jump_args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec!["-p".into(), "tcp".into()];
        match (&self.ports, self.multiport) {
            (PortSpec::All, _) => {}
            (p, true) => a.extend(["-m".into(), "multiport".into(), "--dports".into(), p.iptables()]),
            (p, false) => a.extend(["--dport".into(), p.iptables()]),
        }
        a.extend(["-j".into(), self.chain.clone()]);
        a
    }

    fn ipt(&self, v4: bool, args: &[&str]) -> Result<String, FirewallError> {
        let mut full = vec!["-w"];
        full.extend_from_slice(args);
        self.runner.run(Self::bin(v4), &full, None)
    }

    fn rule(&self, op: &str, ip: IpAddr) -> Vec<String> {
        let v4 = ip.is_ipv4();
        let mut r = vec![op.to_string(), self.chain.clone()];
        if op == "-I" {
            r.push("1".into());
        }
        r.extend([
            "-s".into(),
            ip.to_string(),
            "-j".into(),
            "REJECT".into(),
            "--reject-with".into(),
            Self::reject(v4).into(),
        ]);
        r
    }

    fn has_rule(&self, ip: IpAddr) -> bool {
        let args = self.rule("-C", ip);
        self.ipt(ip.is_ipv4(), &args.iter().map(String::as_str).collect::<Vec<_>>()).is_ok()
    }
}

impl Firewall for IptablesFirewall {
    fn start(&mut self, bans: &[FwBan]) -> Result<(), FirewallError> {
        let jump = self.jump_args();
        let jump: Vec<&str> = jump.iter().map(String::as_str).collect();
        for v4 in [true, false] {
            // Reuse a leftover chain of a crashed run, emptied.
            if self.ipt(v4, &["-n", "-L", &self.chain]).is_ok() {
                self.ipt(v4, &["-F", &self.chain])?;
            } else {
                self.ipt(v4, &["-N", &self.chain])?;
            }
            self.ipt(v4, &["-A", &self.chain, "-j", "RETURN"])?;
            let mut check = vec!["-C", self.input.as_str()];
            check.extend_from_slice(&jump);
            if self.ipt(v4, &check).is_err() {
                let mut ins = vec!["-I", self.input.as_str()];
                ins.extend_from_slice(&jump);
                self.ipt(v4, &ins)?;
            }
        }
        for b in bans {
            self.ban(*b)?;
        }
        Ok(())
    }

    fn ban(&mut self, ban: FwBan) -> Result<(), FirewallError> {
        if self.has_rule(ban.ip) {
            return Ok(());
        }
        let args = self.rule("-I", ban.ip);
        self.ipt(ban.ip.is_ipv4(), &args.iter().map(String::as_str).collect::<Vec<_>>()).map(|_| ())
    }

    fn unban(&mut self, ip: IpAddr) -> Result<(), FirewallError> {
        while self.has_rule(ip) {
            let args = self.rule("-D", ip);
            self.ipt(ip.is_ipv4(), &args.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        Ok(())
    }

    fn stop(&mut self) -> Result<(), FirewallError> {
        let jump = self.jump_args();
        let jump: Vec<&str> = jump.iter().map(String::as_str).collect();
        for v4 in [true, false] {
            let mut del = vec!["-D", self.input.as_str()];
            del.extend_from_slice(&jump);
            while self.ipt(v4, &del).is_ok() {}
            if self.ipt(v4, &["-n", "-L", &self.chain]).is_ok() {
                self.ipt(v4, &["-F", &self.chain])?;
                self.ipt(v4, &["-X", &self.chain])?;
            }
        }
        Ok(())
    }

    fn kernel_expires(&self) -> bool {
        false
    }

    fn is_running(&self) -> bool {
        self.ipt(true, &["-n", "-L", &self.chain]).is_ok()
    }

    fn describe(&self) -> String {
        format!("iptables chain {}", self.chain)
    }

    fn list(&self) -> Result<Vec<FwBan>, FirewallError> {
        let mut out = Vec::new();
        for v4 in [true, false] {
            let Ok(text) = self.ipt(v4, &["-S", &self.chain]) else {
                continue;
            };
            for line in text.lines() {
                let w: Vec<&str> = line.split_whitespace().collect();
                if let Some(i) = w.iter().position(|&x| x == "-s") {
                    let a = w.get(i + 1).copied().unwrap_or("");
                    let a = a.strip_suffix("/32").or_else(|| a.strip_suffix("/128")).unwrap_or(a);
                    if let Ok(ip) = a.parse() {
                        out.push(FwBan { ip, timeout: None });
                    }
                }
            }
        }
        Ok(out)
    }
}
