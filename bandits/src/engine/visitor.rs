//! A visitor as the plugin remembers them: an id and the arm of every flag they were
//! given, carried in one private cookie.
//!
//! This is the cookie's plain text (Rocket encrypts and authenticates it); nothing about a
//! visitor is kept on the server. Decoding is strict: anything that is not exactly what
//! [`VisitorState::encode`] writes (a cookie from an older format, a truncated value,
//! names that break the flag rules) is refused, and the request is served as a new
//! visitor's.
//!
//! ```
//! use bandits::engine::visitor::{Assigned, VisitorState};
//! use rand::{rngs::SmallRng, SeedableRng};
//!
//! let mut visitor = VisitorState::new(&mut SmallRng::seed_from_u64(1));
//! visitor.insert("headline-flag", Assigned::new(1, "on"));
//! visitor.get_mut("headline-flag").unwrap().exposed = true;
//!
//! let text = visitor.encode();
//! let again = VisitorState::decode(&text).expect("what encode writes decodes");
//! assert_eq!(again, visitor);
//! assert!(again.get("headline-flag").unwrap().exposed);
//!
//! assert!(VisitorState::decode(&text[..text.len() - 3]).is_none());
//! assert!(VisitorState::decode("{\"v\":\"not-an-id\",\"a\":{}}").is_none());
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::flag::MAX_NAME_LEN;
use super::partners::{is_uid, Referral};

/// The longest encoded state the plugin writes. Encrypted and base64-encoded it stays well
/// under the 4,096 bytes browsers keep per cookie. A visitor whose assignments would not
/// fit keeps those they have; further flags show them their control, uncounted.
pub const MAX_ENCODED_LEN: usize = 2_400;

/// Length of a visitor id: 128 random bits as lowercase hex.
const ID_LEN: usize = 32;

/// A visitor's arm in one flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Assigned {
    /// The flag's epoch when the arm was given: a reset raises it and voids the arm.
    pub epoch: i64,
    /// The arm's name.
    pub arm: String,
    /// The visitor has been counted as a view of this arm.
    pub exposed: bool,
    /// The visitor has been counted as a conversion of this arm.
    pub converted: bool,
    /// The partner (uid) whose referral was current when the visitor was counted as a
    /// view: their view and their conversion count for that partner too. `None`: for no
    /// partner.
    pub partner: Option<String>,
    /// The probability with which the policy chose this arm, kept from the choice until
    /// the visitor is counted as a view (its log entry records it), then dropped. `None`:
    /// not known, or not needed any more.
    pub propensity: Option<f64>,
}

impl Assigned {
    /// A fresh assignment: not yet exposed, not converted.
    pub fn new(epoch: i64, arm: impl Into<String>) -> Self {
        Assigned {
            epoch,
            arm: arm.into(),
            exposed: false,
            converted: false,
            partner: None,
            propensity: None,
        }
    }
}

/// Why a visitor sees an arm they asked for. Overridden visitors are never counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideKind {
    /// Waffle's testing mode: `?bandits_<flag>=<arm>` on a flag with testing enabled.
    Testing,
    /// Proctor's force groups: `?bandits_force=<flag>:<arm>,...` from a privileged request.
    Forced,
}

impl OverrideKind {
    fn code(self) -> u8 {
        match self {
            OverrideKind::Testing => 1,
            OverrideKind::Forced => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(OverrideKind::Testing),
            2 => Some(OverrideKind::Forced),
            _ => None,
        }
    }
}

/// A visitor's id, assignments and overrides, by flag name.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitorState {
    id: String,
    assignments: BTreeMap<String, Assigned>,
    overrides: BTreeMap<String, (String, OverrideKind)>,
    referral: Option<Referral>,
}

/// The cookie's wire form: short keys, one array per flag (`[epoch, arm, bits]`), and the
/// overrides (`[arm, kind]`), the referral (`[partner, referred_at]`) and the partners
/// credited per flag only when there are some, and the propensities of arms chosen but not
/// yet counted: a cookie written before any of these existed decodes as one without.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    v: String,
    a: BTreeMap<String, (i64, String, u8)>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    o: BTreeMap<String, (String, u8)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<(String, i64)>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    p: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    q: BTreeMap<String, f64>,
}

const EXPOSED: u8 = 1;
const CONVERTED: u8 = 2;

impl VisitorState {
    /// A new visitor with a random id and no assignments.
    pub fn new<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let bits: u128 = rng.random();
        let mut id = String::with_capacity(ID_LEN);
        // Writing to a String cannot fail.
        let _ = write!(id, "{bits:032x}");
        VisitorState {
            id,
            assignments: BTreeMap::new(),
            overrides: BTreeMap::new(),
            referral: None,
        }
    }

    /// The partner who referred the visitor, and when, if one did.
    pub fn referral(&self) -> Option<&Referral> {
        self.referral.as_ref()
    }

    /// Remembers (or, with `None`, forgets) who referred the visitor.
    pub fn set_referral(&mut self, referral: Option<Referral>) {
        self.referral = referral;
    }

    /// The arm the visitor asked for in flag `flag`, and how.
    pub fn override_for(&self, flag: &str) -> Option<(&str, OverrideKind)> {
        self.overrides
            .get(flag)
            .map(|(arm, kind)| (arm.as_str(), *kind))
    }

    /// Remembers that the visitor asked for `arm` in flag `flag`.
    pub fn set_override(
        &mut self,
        flag: impl Into<String>,
        arm: impl Into<String>,
        kind: OverrideKind,
    ) {
        self.overrides.insert(flag.into(), (arm.into(), kind));
    }

    /// Every override, by flag name in order: `(flag, arm, kind)`.
    pub fn overrides(&self) -> impl Iterator<Item = (&str, &str, OverrideKind)> {
        self.overrides
            .iter()
            .map(|(flag, (arm, kind))| (flag.as_str(), arm.as_str(), *kind))
    }

    /// Forgets the override of flag `flag`; returns whether there was one.
    pub fn clear_override(&mut self, flag: &str) -> bool {
        self.overrides.remove(flag).is_some()
    }

    /// Forgets every override of this kind; returns whether there was one.
    pub fn clear_overrides(&mut self, kind: OverrideKind) -> bool {
        let before = self.overrides.len();
        self.overrides.retain(|_, (_, k)| *k != kind);
        self.overrides.len() != before
    }

    /// Whether `text` is a visitor id as [`new`](Self::new) makes them: 32 lowercase
    /// hexadecimal characters.
    pub fn is_id(text: &str) -> bool {
        text.len() == ID_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }

    /// The visitor's id: 32 lowercase hexadecimal characters.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The visitor's arm in flag `flag`, whatever its epoch.
    pub fn get(&self, flag: &str) -> Option<&Assigned> {
        self.assignments.get(flag)
    }

    /// The visitor's arm in flag `flag`, to update.
    pub fn get_mut(&mut self, flag: &str) -> Option<&mut Assigned> {
        self.assignments.get_mut(flag)
    }

    /// Gives the visitor `assigned` in flag `flag`, replacing any earlier arm.
    pub fn insert(&mut self, flag: impl Into<String>, assigned: Assigned) {
        self.assignments.insert(flag.into(), assigned);
    }

    /// Forgets the visitor's arm in flag `flag`.
    pub fn remove(&mut self, flag: &str) -> Option<Assigned> {
        self.assignments.remove(flag)
    }

    /// Forgets the arms of every flag for which `keep` returns false.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Assigned) -> bool) {
        self.assignments
            .retain(|flag, assigned| keep(flag, assigned));
    }

    /// Every assignment, by flag name in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Assigned)> {
        self.assignments
            .iter()
            .map(|(flag, assigned)| (flag.as_str(), assigned))
    }

    /// The number of flags the visitor holds an arm of.
    pub fn len(&self) -> usize {
        self.assignments.len()
    }

    /// Whether the visitor holds no arm at all.
    pub fn is_empty(&self) -> bool {
        self.assignments.is_empty()
    }

    /// The state as the cookie's plain text (compact JSON).
    pub fn encode(&self) -> String {
        let wire = Wire {
            v: self.id.clone(),
            a: self
                .assignments
                .iter()
                .map(|(flag, a)| {
                    let bits = u8::from(a.exposed) * EXPOSED + u8::from(a.converted) * CONVERTED;
                    (flag.clone(), (a.epoch, a.arm.clone(), bits))
                })
                .collect(),
            o: self
                .overrides
                .iter()
                .map(|(flag, (arm, kind))| (flag.clone(), (arm.clone(), kind.code())))
                .collect(),
            r: self
                .referral
                .as_ref()
                .map(|referral| (referral.partner.clone(), referral.referred_at)),
            p: self
                .assignments
                .iter()
                .filter_map(|(flag, a)| Some((flag.clone(), a.partner.clone()?)))
                .collect(),
            q: self
                .assignments
                .iter()
                .filter(|(_, a)| !a.exposed)
                .filter_map(|(flag, a)| Some((flag.clone(), a.propensity?)))
                .collect(),
        };
        // Serializing strings, integers and a map with string keys cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Whether the encoded state fits the cookie ([`MAX_ENCODED_LEN`]).
    pub fn fits(&self) -> bool {
        self.encode().len() <= MAX_ENCODED_LEN
    }

    /// Reads what [`encode`](Self::encode) wrote; `None` for anything else.
    pub fn decode(text: &str) -> Option<VisitorState> {
        if text.len() > MAX_ENCODED_LEN {
            return None;
        }
        let wire: Wire = serde_json::from_str(text).ok()?;
        if !VisitorState::is_id(&wire.v) {
            return None;
        }
        // Checked in place, then turned into assignments in the same map order (no second
        // round of insertions: `collect` from a sorted iterator builds the tree in bulk).
        let valid = wire.a.iter().all(|(flag, (_, arm, bits))| {
            is_name(flag) && is_name(arm) && *bits <= EXPOSED + CONVERTED
        });
        let credited = wire
            .p
            .iter()
            .all(|(flag, partner)| wire.a.contains_key(flag) && is_uid(partner));
        let chosen = wire.q.iter().all(|(flag, propensity)| {
            wire.a
                .get(flag)
                .is_some_and(|(_, _, bits)| bits & EXPOSED == 0)
                && (0.0..=1.0).contains(propensity)
        });
        if !valid || !credited || !chosen {
            return None;
        }
        let mut partners = wire.p;
        let mut propensities = wire.q;
        let assignments = wire
            .a
            .into_iter()
            .map(|(flag, (epoch, arm, bits))| {
                let assigned = Assigned {
                    epoch,
                    arm,
                    exposed: bits & EXPOSED != 0,
                    converted: bits & CONVERTED != 0,
                    partner: partners.remove(&flag),
                    propensity: propensities.remove(&flag),
                };
                (flag, assigned)
            })
            .collect();
        let mut overrides = BTreeMap::new();
        for (flag, (arm, code)) in wire.o {
            if !is_name(&flag) || !is_name(&arm) {
                return None;
            }
            overrides.insert(flag, (arm, OverrideKind::from_code(code)?));
        }
        let referral = match wire.r {
            None => None,
            Some((partner, referred_at)) if is_uid(&partner) && referred_at >= 0 => {
                Some(Referral {
                    partner,
                    referred_at,
                })
            }
            Some(_) => return None,
        };
        Some(VisitorState {
            id: wire.v,
            assignments,
            overrides,
            referral,
        })
    }
}

/// The flag and arm name rule, as bytes: 1 to 100 of `a-z`, `0-9`, `-`, `_`.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{rngs::SmallRng, SeedableRng};

    fn visitor(seed: u64) -> VisitorState {
        VisitorState::new(&mut SmallRng::seed_from_u64(seed))
    }

    #[test]
    fn new_visitors_get_distinct_well_formed_ids() {
        let a = visitor(1);
        let b = visitor(2);
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id().len(), 32);
        assert!(a.id().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(VisitorState::decode(&a.encode()), Some(a));
    }

    #[test]
    fn every_flag_bit_survives_a_round_trip() {
        let mut state = visitor(3);
        for (i, (exposed, converted)) in [(false, false), (true, false), (true, true)]
            .into_iter()
            .enumerate()
        {
            state.insert(
                format!("flag-{i}"),
                Assigned {
                    epoch: i as i64 + 1,
                    arm: "on".into(),
                    exposed,
                    converted,
                    partner: converted.then(|| "Ab12Cd34".to_string()),
                    propensity: (!exposed).then_some(0.25),
                },
            );
        }
        let decoded = VisitorState::decode(&state.encode()).expect("decodes");
        assert_eq!(decoded, state);
        assert!(decoded.get("flag-2").is_some_and(|a| a.converted));
        assert!(decoded.get("flag-0").is_some_and(|a| !a.exposed));
        assert_eq!(
            decoded.get("flag-2").and_then(|a| a.partner.as_deref()),
            Some("Ab12Cd34")
        );
        assert_eq!(
            decoded.get("flag-1").and_then(|a| a.partner.as_deref()),
            None
        );
    }

    #[test]
    fn a_credited_partner_must_be_a_uid_of_a_flag_the_visitor_holds() {
        let id = visitor(9).id().to_string();
        let arms = r#""a":{"f":[1,"on",1]}"#;
        let good = format!(r#"{{"v":"{id}",{arms},"p":{{"f":"Ab12Cd34"}}}}"#);
        assert!(VisitorState::decode(&good).is_some());
        for bad in [
            format!(r#"{{"v":"{id}",{arms},"p":{{"g":"Ab12Cd34"}}}}"#),
            format!(r#"{{"v":"{id}",{arms},"p":{{"f":"not a uid"}}}}"#),
        ] {
            assert_eq!(VisitorState::decode(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_propensity_belongs_to_an_arm_not_yet_counted_and_is_a_probability() {
        let id = visitor(10).id().to_string();
        let chosen = r#""a":{"f":[1,"on",0],"g":[1,"on",1]}"#;
        let good = format!(r#"{{"v":"{id}",{chosen},"q":{{"f":0.2}}}}"#);
        let state = VisitorState::decode(&good).expect("decodes");
        assert_eq!(state.get("f").and_then(|a| a.propensity), Some(0.2));
        for bad in [
            format!(r#"{{"v":"{id}",{chosen},"q":{{"g":0.2}}}}"#),
            format!(r#"{{"v":"{id}",{chosen},"q":{{"h":0.2}}}}"#),
            format!(r#"{{"v":"{id}",{chosen},"q":{{"f":1.5}}}}"#),
            format!(r#"{{"v":"{id}",{chosen},"q":{{"f":-0.1}}}}"#),
            format!(r#"{{"v":"{id}",{chosen},"q":{{"f":"x"}}}}"#),
        ] {
            assert_eq!(VisitorState::decode(&bad), None, "{bad}");
        }
        // Once counted, the propensity is in the log entry and leaves the cookie.
        let mut counted = state.clone();
        if let Some(slot) = counted.get_mut("f") {
            slot.exposed = true;
        }
        assert!(!counted.encode().contains("\"q\""));
    }

    #[test]
    fn foreign_or_damaged_values_are_refused() {
        let good = visitor(4).encode();
        for bad in [
            "",
            "null",
            "{}",
            "[1,2,3]",
            &good[..good.len() / 2],
            "{\"v\":\"0123456789abcdef0123456789ABCDEF\",\"a\":{}}",
            "{\"v\":\"0123456789abcdef0123456789abcdef\",\"a\":{\"Bad Name\":[1,\"on\",0]}}",
            "{\"v\":\"0123456789abcdef0123456789abcdef\",\"a\":{\"f\":[1,\"on\",9]}}",
            "{\"v\":\"0123456789abcdef0123456789abcdef\",\"a\":{},\"x\":1}",
        ] {
            assert_eq!(VisitorState::decode(bad), None, "{bad:?}");
        }
        let oversized = format!("{good:<width$}", width = MAX_ENCODED_LEN + 1);
        assert_eq!(VisitorState::decode(&oversized), None);
    }

    #[test]
    fn overrides_round_trip_and_clear_by_kind() {
        let mut state = visitor(6);
        assert!(!state.encode().contains("\"o\""), "no overrides, no field");
        state.set_override("checkout", "b", OverrideKind::Forced);
        state.set_override("headline", "on", OverrideKind::Testing);
        let decoded = VisitorState::decode(&state.encode()).expect("decodes");
        assert_eq!(decoded, state);
        assert_eq!(
            decoded.override_for("checkout"),
            Some(("b", OverrideKind::Forced))
        );
        assert!(state.clear_overrides(OverrideKind::Forced));
        assert_eq!(state.override_for("checkout"), None);
        assert_eq!(
            state.override_for("headline"),
            Some(("on", OverrideKind::Testing))
        );
        assert!(state.clear_override("headline"));
        assert!(!state.clear_override("headline"));
        let bad_kind =
            "{\"v\":\"0123456789abcdef0123456789abcdef\",\"a\":{},\"o\":{\"f\":[\"on\",7]}}";
        assert_eq!(VisitorState::decode(bad_kind), None);
    }

    #[test]
    fn a_referral_round_trips_and_older_cookies_still_decode() {
        // Written by the build before referrals: no "r".
        let older = "{\"v\":\"0123456789abcdef0123456789abcdef\",\"a\":{\"f\":[1,\"on\",1]}}";
        let mut state = VisitorState::decode(older).expect("an older cookie decodes");
        assert_eq!(state.referral(), None);
        assert_eq!(state.encode(), older, "and is written as it was");
        state.set_referral(Some(Referral {
            partner: "Ab3dE6gH".into(),
            referred_at: 1_763_700_000_000,
        }));
        let text = state.encode();
        assert!(
            text.ends_with(",\"r\":[\"Ab3dE6gH\",1763700000000]}"),
            "{text}"
        );
        assert_eq!(VisitorState::decode(&text), Some(state));
        for bad in [
            "{\"v\":\"0123456789abcdef0123456789abcdef\",\"a\":{},\"r\":[\"short\",1]}",
            "{\"v\":\"0123456789abcdef0123456789abcdef\",\"a\":{},\"r\":[\"Ab3dE6gH\",-1]}",
            "{\"v\":\"0123456789abcdef0123456789abcdef\",\"a\":{},\"r\":[\"Ab3dE6gH\"]}",
        ] {
            assert_eq!(VisitorState::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_full_cookie_says_so() {
        let mut state = visitor(5);
        let mut i = 0;
        while state.fits() {
            state.insert(
                format!("a-rather-long-flag-name-{i:04}"),
                Assigned::new(1, "on"),
            );
            i += 1;
        }
        assert!(i > 20, "only {i} flags fit");
        assert!(state.encode().len() > MAX_ENCODED_LEN);
    }

    proptest! {
        /// Whatever a client sends, decoding answers without panicking, and whatever it
        /// accepts encodes back to a value it accepts again.
        #[test]
        fn decoding_never_panics(text in ".{0,300}") {
            if let Some(state) = VisitorState::decode(&text) {
                prop_assert_eq!(VisitorState::decode(&state.encode()), Some(state));
            }
        }

        #[test]
        fn encoded_states_decode_to_themselves(
            seed in any::<u64>(),
            flags in proptest::collection::btree_map(
                "[a-z0-9_-]{1,20}",
                (any::<i64>(), "[a-z0-9_-]{1,10}", any::<bool>(), any::<bool>()),
                0..10,
            ),
        ) {
            let mut state = visitor(seed);
            for (flag, (epoch, arm, exposed, converted)) in flags {
                let partner = converted.then(|| "Xy98Zw76".to_string());
                let propensity = (!exposed).then_some(0.125);
                state.insert(flag, Assigned { epoch, arm, exposed, converted, partner, propensity });
            }
            prop_assert_eq!(VisitorState::decode(&state.encode()), Some(state));
        }
    }
}
