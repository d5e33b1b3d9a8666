//! The records the responder owns and how it answers a query with them
//! (RFC 6762 §6, RFC 6763): `<host>.local` A/AAAA, the DNS-SD service
//! enumeration PTR, the `_http._tcp` PTR to the instance, and the
//! instance's SRV and TXT, with the additional records a browser needs to
//! connect without asking again, and NSEC for types a name does not have.
//!
//! Everything here is a pure function of the names, the port and the
//! addresses of the interface a query came in on: the socket side lives in
//! [`super::responder`].

use std::net::{Ipv4Addr, Ipv6Addr};

use super::message::{rtype, Data, Message, Name, Outgoing, Question, Record};

/// TTL of records about the host (A, AAAA, SRV), RFC 6762 §10.
pub const HOST_TTL: u32 = 120;
/// TTL of the other records (PTR, TXT), RFC 6762 §10.
pub const OTHER_TTL: u32 = 4500;
/// Cap on TTLs in legacy unicast answers (RFC 6762 §6.7).
const LEGACY_TTL: u32 = 10;

/// Who the responder is on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The host label (`homeline`, or `homeline-2` after a conflict).
    pub host: String,
    /// The service instance label (`Homeline`, the household's name…).
    pub instance: String,
    /// The web UI's TCP port.
    pub port: u16,
}

/// The addresses of one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addrs {
    /// Its IPv4 address.
    pub v4: Ipv4Addr,
    /// Its IPv6 addresses (link-local included).
    pub v6: Vec<Ipv6Addr>,
}

/// `_http._tcp.local`.
pub fn service_type() -> Name {
    Name::dotted("_http._tcp.local")
}

/// `_services._dns-sd._udp.local` (RFC 6763 §9).
fn service_enumeration() -> Name {
    Name::dotted("_services._dns-sd._udp.local")
}

/// Cuts `s` to at most 63 bytes on a character boundary (one DNS label).
pub fn label(s: &str) -> String {
    let mut end = s.len().min(63);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl Identity {
    /// `<host>.local`.
    pub fn host_name(&self) -> Name {
        Name::new([self.host.as_bytes(), b"local"])
    }

    /// `<instance>._http._tcp.local`.
    pub fn instance_name(&self) -> Name {
        service_type().child(label(&self.instance).as_bytes())
    }

    fn address_records(&self, addrs: &Addrs) -> Vec<Record> {
        let mut v = vec![unique(
            self.host_name(),
            rtype::A,
            HOST_TTL,
            Data::A(addrs.v4),
        )];
        for a in &addrs.v6 {
            v.push(unique(
                self.host_name(),
                rtype::AAAA,
                HOST_TTL,
                Data::Aaaa(*a),
            ));
        }
        v
    }

    fn srv(&self) -> Record {
        unique(
            self.instance_name(),
            rtype::SRV,
            HOST_TTL,
            Data::Srv {
                priority: 0,
                weight: 0,
                port: self.port,
                target: self.host_name(),
            },
        )
    }

    fn txt(&self) -> Record {
        unique(
            self.instance_name(),
            rtype::TXT,
            OTHER_TTL,
            Data::Txt(vec![b"path=/".to_vec()]),
        )
    }

    fn service_ptr(&self) -> Record {
        shared(service_type(), rtype::PTR, Data::Ptr(self.instance_name()))
    }

    fn enumeration_ptr(&self) -> Record {
        shared(service_enumeration(), rtype::PTR, Data::Ptr(service_type()))
    }

    /// Every record, as announced on an interface with `addrs`.
    pub fn all_records(&self, addrs: &Addrs) -> Vec<Record> {
        let mut v = self.address_records(addrs);
        v.extend([
            self.srv(),
            self.txt(),
            self.service_ptr(),
            self.enumeration_ptr(),
        ]);
        v
    }

    /// The unique records a probe proposes (RFC 6762 §8.1): the address
    /// and the instance's SRV and TXT.
    pub fn probe(&self, addrs: &Addrs) -> Outgoing {
        let any = |name: Name| Question {
            name,
            qtype: rtype::ANY,
            unicast_response: true,
        };
        Outgoing {
            questions: vec![any(self.host_name()), any(self.instance_name())],
            authority: vec![
                unique(self.host_name(), rtype::A, HOST_TTL, Data::A(addrs.v4)),
                self.srv(),
                self.txt(),
            ],
            ..Outgoing::default()
        }
    }

    /// The unsolicited response that announces every record (RFC 6762 §8.3),
    /// or with `goodbye`, withdraws them (TTL 0, §10.1).
    pub fn announcement(&self, addrs: &Addrs, goodbye: bool) -> Outgoing {
        let mut answers = self.all_records(addrs);
        if goodbye {
            for r in &mut answers {
                r.ttl = 0;
            }
        }
        Outgoing {
            response: true,
            answers,
            ..Outgoing::default()
        }
    }

    /// The records that answer `q` directly, and the NSEC that says so when
    /// one of our unique names has none of the asked type.
    fn answer_question(&self, q: &Question, addrs: &Addrs) -> (Vec<Record>, Vec<Record>) {
        let wants = |t: u16| q.qtype == t || q.qtype == rtype::ANY;
        let mut answers = Vec::new();
        let mut negative = Vec::new();
        if q.name == self.host_name() {
            answers.extend(
                self.address_records(addrs)
                    .into_iter()
                    .filter(|r| wants(r.rtype)),
            );
            if answers.is_empty() {
                negative.push(self.host_nsec(addrs));
            }
        } else if q.name == self.instance_name() {
            answers.extend(
                [self.srv(), self.txt()]
                    .into_iter()
                    .filter(|r| wants(r.rtype)),
            );
            if answers.is_empty() {
                negative.push(unique(
                    self.instance_name(),
                    rtype::NSEC,
                    HOST_TTL,
                    Data::Nsec(vec![rtype::TXT, rtype::SRV]),
                ));
            }
        } else if q.name == service_type() && wants(rtype::PTR) {
            answers.push(self.service_ptr());
        } else if q.name == service_enumeration() && wants(rtype::PTR) {
            answers.push(self.enumeration_ptr());
        }
        (answers, negative)
    }

    fn host_nsec(&self, addrs: &Addrs) -> Record {
        let mut types = vec![rtype::A];
        if !addrs.v6.is_empty() {
            types.push(rtype::AAAA);
        }
        unique(self.host_name(), rtype::NSEC, HOST_TTL, Data::Nsec(types))
    }

    /// What a browser would ask next after `answers` (RFC 6763 §12).
    fn additional_for(&self, answers: &[Record], addrs: &Addrs) -> Vec<Record> {
        let mut extra = Vec::new();
        for a in answers {
            match (&a.data, a.rtype) {
                (Data::Ptr(target), rtype::PTR) if *target == self.instance_name() => {
                    extra.extend([self.srv(), self.txt()]);
                    extra.extend(self.address_records(addrs));
                }
                (_, rtype::SRV) => extra.extend(self.address_records(addrs)),
                (_, rtype::A) if addrs.v6.is_empty() => extra.push(self.host_nsec(addrs)),
                (_, rtype::A) => extra.extend(
                    self.address_records(addrs)
                        .into_iter()
                        .filter(|r| r.rtype == rtype::AAAA),
                ),
                _ => {}
            }
        }
        extra
    }

    /// The answer to `query` received on an interface with `addrs`.
    /// `legacy` is a query from a port other than 5353 (RFC 6762 §6.7):
    /// answered by unicast with its ID and question, TTLs capped and no
    /// cache-flush bits. Otherwise questions with the QU bit are answered by
    /// unicast and the others by multicast. Answers the asker listed as
    /// known with at least half their TTL left are left out (§7.1).
    pub fn respond(&self, query: &Message, addrs: &Addrs, legacy: bool) -> Reply {
        let mut reply = Reply::default();
        if query.is_response {
            return reply;
        }
        for q in &query.questions {
            let (answers, negative) = self.answer_question(q, addrs);
            let answers: Vec<Record> = answers.into_iter().filter(|r| !known(query, r)).collect();
            if answers.is_empty() && negative.is_empty() {
                continue;
            }
            let target = if legacy || q.unicast_response {
                reply.unicast.get_or_insert_with(Outgoing::default)
            } else {
                reply.multicast.get_or_insert_with(Outgoing::default)
            };
            target.response = true;
            if legacy {
                target.id = query.id;
                target.questions.push(q.clone());
            }
            let extra = self.additional_for(&answers, addrs);
            push_new(&mut target.answers, answers);
            push_new(&mut target.additional, extra);
            push_new(&mut target.additional, negative);
            reply.shared_only &= target.answers.iter().all(|r| !r.cache_flush);
        }
        for out in [&mut reply.unicast, &mut reply.multicast]
            .into_iter()
            .flatten()
        {
            let answers = out.answers.clone();
            out.additional
                .retain(|r| !answers.iter().any(|a| a.same_as(r)) && !known(query, r));
        }
        if legacy {
            if let Some(out) = &mut reply.unicast {
                for r in out.answers.iter_mut().chain(&mut out.additional) {
                    r.ttl = r.ttl.min(LEGACY_TTL);
                    r.cache_flush = false;
                }
            }
        }
        reply
    }

    /// Whether a response from another responder claims one of our unique
    /// names with other data than ours (RFC 6762 §9): `(host, instance)`.
    /// Records identical to ours are no conflict.
    pub fn conflicts(&self, msg: &Message, ours: &[Addrs]) -> (bool, bool) {
        let ours_all: Vec<Record> = ours.iter().flat_map(|a| self.all_records(a)).collect();
        let differs = |r: &Record| !ours_all.iter().any(|o| o.same_as(r));
        let records = msg.answers.iter().chain(&msg.authority);
        let mut host = false;
        let mut instance = false;
        for r in records {
            if r.ttl == 0 {
                continue;
            }
            if r.name == self.host_name() && matches!(r.rtype, rtype::A | rtype::AAAA) && differs(r)
            {
                host = true;
            }
            if r.name == self.instance_name()
                && matches!(r.rtype, rtype::SRV | rtype::TXT)
                && differs(r)
            {
                instance = true;
            }
        }
        (host, instance)
    }

    /// Simultaneous probe tie-break (RFC 6762 §8.2): whether another
    /// host's probe for one of our names outranks ours, so we must wait and
    /// probe again. Records are compared class, type, then data, bytewise;
    /// the lexicographically later set wins.
    pub fn loses_tiebreak(&self, msg: &Message, addrs: &Addrs) -> bool {
        if msg.is_response || msg.authority.is_empty() {
            return false;
        }
        let proposal = self.probe(addrs);
        for name in [self.host_name(), self.instance_name()] {
            if !msg.questions.iter().any(|q| q.name == name) {
                continue;
            }
            let key = |rs: &[Record]| {
                let mut v: Vec<(u16, Vec<u8>)> = rs
                    .iter()
                    .filter(|r| r.name == name)
                    .map(|r| (r.rtype, r.rdata()))
                    .collect();
                v.sort();
                v
            };
            let theirs = key(&msg.authority);
            let mine = key(&proposal.authority);
            if !theirs.is_empty() && theirs > mine {
                return true;
            }
        }
        false
    }
}

fn known(query: &Message, r: &Record) -> bool {
    query
        .answers
        .iter()
        .any(|k| k.same_as(r) && k.ttl >= r.ttl / 2)
}

fn push_new(into: &mut Vec<Record>, records: Vec<Record>) {
    for r in records {
        if !into.iter().any(|o| o.same_as(&r)) {
            into.push(r);
        }
    }
}

fn unique(name: Name, rtype: u16, ttl: u32, data: Data) -> Record {
    Record {
        name,
        rtype,
        cache_flush: true,
        ttl,
        data,
    }
}

fn shared(name: Name, rtype: u16, data: Data) -> Record {
    Record {
        name,
        rtype,
        cache_flush: false,
        ttl: OTHER_TTL,
        data,
    }
}

/// The answers to send for one query.
#[derive(Debug, Clone)]
pub struct Reply {
    /// To the asker's address and port.
    pub unicast: Option<Outgoing>,
    /// To 224.0.0.251:5353 on the interface the query came in on.
    pub multicast: Option<Outgoing>,
    /// Only shared records (PTR) are answered: the multicast answer is
    /// delayed 20-120 ms so that several responders do not collide (§6).
    pub shared_only: bool,
}

impl Default for Reply {
    fn default() -> Reply {
        Reply {
            unicast: None,
            multicast: None,
            shared_only: true,
        }
    }
}

/// The next name to try after a conflict on `base`: `homeline-2`,
/// `homeline-3`… (RFC 6762 §9 leaves the scheme to the host; this is the
/// one macOS and Avahi use for host names), cut so it stays one label.
pub fn host_after_conflict(base: &str, attempt: u32) -> String {
    if attempt <= 1 {
        return base.to_string();
    }
    let suffix = format!("-{attempt}");
    let mut stem = base.to_string();
    stem.truncate(63 - suffix.len().min(62));
    format!("{}{suffix}", stem.trim_end_matches('-'))
}

/// The instance name after a conflict: `Homeline (2)` (RFC 6763 §9's
/// example style).
pub fn instance_after_conflict(base: &str, attempt: u32) -> String {
    if attempt <= 1 {
        return label(base);
    }
    let suffix = format!(" ({attempt})");
    let stem = label(base);
    let mut end = stem.len().min(63 - suffix.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{suffix}", &stem[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Identity {
        Identity {
            host: "homeline".into(),
            instance: "Smith Family".into(),
            port: 8080,
        }
    }

    fn lan() -> Addrs {
        Addrs {
            v4: Ipv4Addr::new(192, 168, 1, 20),
            v6: vec![],
        }
    }

    fn query(questions: &[(&str, u16, bool)]) -> Message {
        Message {
            id: 0x4242,
            is_response: false,
            questions: questions
                .iter()
                .map(|(n, t, qu)| Question {
                    name: Name::dotted(n),
                    qtype: *t,
                    unicast_response: *qu,
                })
                .collect(),
            answers: vec![],
            authority: vec![],
        }
    }

    /// Encodes and parses back, as the asker sees it.
    fn seen(out: &Outgoing) -> Message {
        Message::parse(&out.encode()).expect("our answer parses")
    }

    #[test]
    fn the_host_name_is_answered_with_the_interface_address() {
        let q = query(&[("HomeLine.local", rtype::A, false)]);
        let r = me().respond(&q, &lan(), false);
        assert!(r.unicast.is_none());
        let m = seen(r.multicast.as_ref().expect("multicast answer"));
        assert_eq!(m.id, 0);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].data, Data::A(Ipv4Addr::new(192, 168, 1, 20)));
        assert!(m.answers[0].cache_flush && m.answers[0].ttl == HOST_TTL);
        assert!(!r.shared_only, "unique answers go at once");
    }

    #[test]
    fn aaaa_is_answered_when_there_is_one_and_denied_by_nsec_otherwise() {
        let q = query(&[("homeline.local", rtype::AAAA, false)]);
        let r = me().respond(&q, &lan(), false);
        let out = r.multicast.expect("negative answer");
        assert!(out.answers.is_empty());
        assert_eq!(out.additional[0].data, Data::Nsec(vec![rtype::A]));
        let v6 = Addrs {
            v6: vec!["fe80::1".parse().unwrap()],
            ..lan()
        };
        let out = me().respond(&q, &v6, false).multicast.unwrap();
        assert_eq!(out.answers[0].data, Data::Aaaa("fe80::1".parse().unwrap()));
    }

    #[test]
    fn browsing_finds_the_instance_with_everything_to_connect() {
        let q = query(&[("_http._tcp.local", rtype::PTR, false)]);
        let r = me().respond(&q, &lan(), false);
        assert!(r.shared_only, "a shared answer is delayed");
        let m = seen(r.multicast.as_ref().unwrap());
        let instance = Name::dotted("_http._tcp.local").child(b"Smith Family");
        assert_eq!(m.answers[0].data, Data::Ptr(instance.clone()));
        assert!(!m.answers[0].cache_flush);
        let out = r.multicast.unwrap();
        let types: Vec<u16> = out.additional.iter().map(|r| r.rtype).collect();
        assert_eq!(types, vec![rtype::SRV, rtype::TXT, rtype::A]);
        assert_eq!(
            out.additional[0].data,
            Data::Srv {
                priority: 0,
                weight: 0,
                port: 8080,
                target: Name::dotted("homeline.local")
            }
        );
        assert_eq!(out.additional[1].data, Data::Txt(vec![b"path=/".to_vec()]));
        // Service enumeration.
        let q = query(&[("_services._dns-sd._udp.local", rtype::PTR, false)]);
        let out = me().respond(&q, &lan(), false).multicast.unwrap();
        assert_eq!(out.answers[0].data, Data::Ptr(service_type()));
        // The instance itself.
        let q = query(&[("Smith Family._http._tcp.local", rtype::ANY, false)]);
        let out = me().respond(&q, &lan(), false).multicast.unwrap();
        assert_eq!(out.answers.len(), 2);
    }

    #[test]
    fn qu_questions_and_legacy_queries_are_answered_by_unicast() {
        let q = query(&[
            ("homeline.local", rtype::A, true),
            ("_http._tcp.local", rtype::PTR, false),
        ]);
        let r = me().respond(&q, &lan(), false);
        assert_eq!(r.unicast.as_ref().unwrap().answers[0].rtype, rtype::A);
        assert_eq!(r.multicast.as_ref().unwrap().answers[0].rtype, rtype::PTR);
        let q = query(&[("homeline.local", rtype::A, false)]);
        let r = me().respond(&q, &lan(), true);
        assert!(r.multicast.is_none());
        let m = seen(r.unicast.as_ref().unwrap());
        assert_eq!(m.id, 0x4242, "legacy answers echo the ID");
        assert_eq!(m.questions, q.questions, "and the question");
        assert!(m.answers[0].ttl <= 10 && !m.answers[0].cache_flush);
    }

    #[test]
    fn known_answers_are_suppressed_and_strangers_not_answered() {
        let mut q = query(&[("_http._tcp.local", rtype::PTR, false)]);
        let mut known = me().respond(&q, &lan(), false).multicast.unwrap().answers;
        known[0].ttl = OTHER_TTL / 2 + 1;
        q.answers = known.clone();
        assert!(me().respond(&q, &lan(), false).multicast.is_none());
        known[0].ttl = 10; // about to expire: answer again
        q.answers = known;
        assert!(me().respond(&q, &lan(), false).multicast.is_some());
        for name in ["other.local", "homeline.lan", "_ipp._tcp.local"] {
            let q = query(&[(name, rtype::ANY, false)]);
            let r = me().respond(&q, &lan(), false);
            assert!(r.multicast.is_none() && r.unicast.is_none(), "{name}");
        }
        let mut response = query(&[("homeline.local", rtype::A, false)]);
        response.is_response = true;
        assert!(me().respond(&response, &lan(), false).multicast.is_none());
    }

    #[test]
    fn conflicts_are_other_data_for_our_names() {
        let mut theirs = me().announcement(&lan(), false);
        let m = seen(&theirs);
        assert_eq!(me().conflicts(&m, &[lan()]), (false, false), "our own");
        theirs.answers[0].data = Data::A(Ipv4Addr::new(192, 168, 1, 99));
        let m = seen(&theirs);
        assert_eq!(me().conflicts(&m, &[lan()]), (true, false));
        let other = Identity {
            host: "otherbox".into(),
            port: 80,
            ..me()
        };
        let m = seen(&other.announcement(&lan(), false));
        assert_eq!(
            me().conflicts(&m, &[lan()]),
            (false, true),
            "same instance, other host"
        );
        let m = seen(&other.announcement(&lan(), true));
        assert_eq!(
            me().conflicts(&m, &[lan()]),
            (false, false),
            "goodbyes are no claim"
        );
    }

    #[test]
    fn the_later_probe_wins_the_tiebreak() {
        let higher = Addrs {
            v4: Ipv4Addr::new(192, 168, 1, 200),
            v6: vec![],
        };
        let theirs = seen(&me().probe(&higher));
        assert!(me().loses_tiebreak(&theirs, &lan()));
        let theirs = seen(&me().probe(&lan()));
        assert!(!me().loses_tiebreak(&theirs, &lan()), "our own probe ties");
        let lower = Addrs {
            v4: Ipv4Addr::new(192, 168, 1, 2),
            v6: vec![],
        };
        assert!(!me().loses_tiebreak(&seen(&me().probe(&lower)), &lan()));
    }

    #[test]
    fn names_after_a_conflict() {
        assert_eq!(host_after_conflict("homeline", 1), "homeline");
        assert_eq!(host_after_conflict("homeline", 2), "homeline-2");
        assert_eq!(host_after_conflict(&"x".repeat(63), 12).len(), 63);
        assert_eq!(instance_after_conflict("Homeline", 2), "Homeline (2)");
        assert!(instance_after_conflict(&"é".repeat(40), 3).len() <= 63);
        assert_eq!(label(&"é".repeat(40)).len(), 62);
    }
}
