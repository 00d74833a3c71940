//! The names a model declares, and resolving references to them.
//!
//! Declarations are interned as they are read (ids in file order); a
//! reference that names nothing declared is reported with what is declared
//! and, when one is close, the likely intended name.

use std::collections::HashMap;

use super::document::{Located, Problems, closest};
use crate::engine::model::{ClassId, EventTypeId, ProofId, RegionId, SlaId, StateId, TeamId};

/// One namespace of declared names, in declaration order.
pub(super) struct Names {
    /// What one name is (`team`), for messages.
    kind: &'static str,
    /// What several are (`teams`).
    plural: &'static str,
    /// What to do when nothing of this kind is declared.
    how_to_declare: &'static str,
    names: Vec<String>,
    ids: HashMap<String, u16>,
}

/// How many names of one kind a model may declare: ids are `u16`, and
/// `u16::MAX` stays free (it marks an empty slot in the rule tables).
pub(super) const MAX_NAMES: usize = u16::MAX as usize;

/// The id of the next name after `declared` of its kind, if one is left.
pub(super) fn next_id(declared: usize) -> Option<u16> {
    u16::try_from(declared).ok().filter(|&id| id < u16::MAX)
}

/// Why a name could not be declared.
pub(super) enum DeclareError {
    Duplicate,
    TooMany,
}

impl Names {
    pub fn new(kind: &'static str, plural: &'static str, how_to_declare: &'static str) -> Names {
        Names {
            kind,
            plural,
            how_to_declare,
            names: Vec::new(),
            ids: HashMap::new(),
        }
    }

    /// Declares the next name; its id is its position.
    pub fn declare(&mut self, name: &str) -> Result<u16, DeclareError> {
        let id = next_id(self.names.len()).ok_or(DeclareError::TooMany)?;
        self.declare_as(name, id)
    }

    /// Declares a name with an id chosen by the caller (event types: one
    /// global numbering, looked up per source).
    pub fn declare_as(&mut self, name: &str, id: u16) -> Result<u16, DeclareError> {
        if self.ids.contains_key(name) {
            return Err(DeclareError::Duplicate);
        }
        self.ids.insert(name.to_owned(), id);
        self.names.push(name.to_owned());
        Ok(id)
    }

    pub fn find(&self, name: &str) -> Option<u16> {
        self.ids.get(name).copied()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn into_names(self) -> Vec<String> {
        self.names
    }

    /// `{subject} names undeclared {kind} "x" (did you mean "y"?); declared
    /// {kind}s: a, b`.
    pub fn undeclared(&self, subject: &str, name: &str) -> String {
        format!(
            "{subject} names undeclared {} \"{name}\"{}",
            self.kind,
            self.near_and_declared(name)
        )
    }

    /// ` (did you mean "y"?); declared {kind}s: a, b`, or how to declare one
    /// when there is none.
    pub fn near_and_declared(&self, name: &str) -> String {
        let kind = self.kind;
        let mut tail = String::new();
        if let Some(near) = closest(name, self.names.iter().map(String::as_str)) {
            tail.push_str(&format!(" (did you mean \"{near}\"?)"));
        }
        if self.names.is_empty() {
            tail.push_str(&format!("; no {kind} is declared: {}", self.how_to_declare));
        } else {
            tail.push_str(&format!(
                "; declared {}: {}",
                self.plural,
                self.names.join(", ")
            ));
        }
        tail
    }

    /// Resolves a reference, reporting it when undeclared.
    pub fn resolve(&self, p: &mut Problems, subject: &str, name: &Located<&str>) -> Option<u16> {
        let found = self.find(name.value);
        if found.is_none() {
            p.report(&name.span, self.undeclared(subject, name.value));
        }
        found
    }

    /// Resolves every reference of a list; undeclared ones are reported and
    /// left out.
    pub fn resolve_all(
        &self,
        p: &mut Problems,
        subject: &str,
        names: &[Located<&str>],
    ) -> Vec<u16> {
        names
            .iter()
            .filter_map(|n| self.resolve(p, subject, n))
            .collect()
    }
}

/// Every namespace of the model, filled section by section.
pub(super) struct Scope {
    pub teams: Names,
    pub classes: Names,
    pub sources: Names,
    /// Per source (by `SourceId`): its event types, with global ids.
    pub event_types: Vec<Names>,
    pub proofs: Names,
    pub regions: Names,
    /// Per region (by `RegionId`): its states.
    pub states: Vec<Names>,
    pub slas: Names,
    /// `[calendars.NAME]`, in file order (the index into
    /// `ModelSpec::calendars`).
    pub calendars: Names,
}

impl Scope {
    pub fn new() -> Scope {
        Scope {
            teams: Names::new(
                "team",
                "teams",
                "declare teams = [\"...\"] at the top of the file",
            ),
            classes: Names::new(
                "message class",
                "message classes",
                "declare message_classes = [\"...\"] at the top of the file",
            ),
            sources: Names::new("source", "sources", "declare sources under [sources]"),
            event_types: Vec::new(),
            proofs: Names::new("proof", "proofs", "declare proofs as [proofs.NAME] tables"),
            regions: Names::new(
                "region",
                "regions",
                "declare regions as [regions.NAME] tables",
            ),
            states: Vec::new(),
            slas: Names::new("SLA", "SLAs", "declare SLAs as [slas.NAME] tables"),
            calendars: Names::new(
                "calendar",
                "calendars",
                "declare calendars as [calendars.NAME] tables, with time_zone and open",
            ),
        }
    }

    pub fn team(&self, p: &mut Problems, subject: &str, name: &Located<&str>) -> Option<TeamId> {
        self.teams.resolve(p, subject, name).map(TeamId)
    }

    pub fn classes(
        &self,
        p: &mut Problems,
        subject: &str,
        names: &[Located<&str>],
    ) -> Vec<ClassId> {
        self.classes
            .resolve_all(p, subject, names)
            .into_iter()
            .map(ClassId)
            .collect()
    }

    pub fn proofs(&self, p: &mut Problems, subject: &str, names: &[Located<&str>]) -> Vec<ProofId> {
        self.proofs
            .resolve_all(p, subject, names)
            .into_iter()
            .map(ProofId)
            .collect()
    }

    pub fn proof(&self, p: &mut Problems, subject: &str, name: &Located<&str>) -> Option<ProofId> {
        self.proofs.resolve(p, subject, name).map(ProofId)
    }

    pub fn region(
        &self,
        p: &mut Problems,
        subject: &str,
        name: &Located<&str>,
    ) -> Option<RegionId> {
        self.regions.resolve(p, subject, name).map(RegionId)
    }

    pub fn sla(&self, p: &mut Problems, subject: &str, name: &Located<&str>) -> Option<SlaId> {
        self.slas.resolve(p, subject, name).map(SlaId)
    }

    /// A state of a region (the subject should name the region).
    pub fn state(
        &self,
        p: &mut Problems,
        region: RegionId,
        subject: &str,
        name: &Located<&str>,
    ) -> Option<StateId> {
        self.states[region.idx()]
            .resolve(p, subject, name)
            .map(StateId)
    }

    /// An event written `source.type`.
    pub fn event(
        &self,
        p: &mut Problems,
        subject: &str,
        name: &Located<&str>,
    ) -> Option<EventTypeId> {
        let Some((source, ty)) = name.value.split_once('.') else {
            p.report(
                &name.span,
                format!(
                    "{subject} names \"{}\", which is not an event: write \"source.type\", \
                     for example \"billing.payment_succeeded\"",
                    name.value
                ),
            );
            return None;
        };
        let Some(source_id) = self.sources.find(source) else {
            let msg = format!(
                "{subject} names event \"{}\" of undeclared source \"{source}\"{}",
                name.value,
                self.sources.near_and_declared(source)
            );
            p.report(&name.span, msg);
            return None;
        };
        let types = &self.event_types[source_id as usize];
        let found = types.find(ty).map(EventTypeId);
        if found.is_none() {
            let mut msg = format!(
                "{subject} names undeclared event \"{}\": source \"{source}\" declares no type \"{ty}\"",
                name.value
            );
            if let Some(near) = closest(ty, types.names().iter().map(String::as_str)) {
                msg.push_str(&format!(" (did you mean \"{source}.{near}\"?)"));
            }
            msg.push_str(&format!(
                "; its types: {}; add it to `{source}` under [sources] if it is new",
                types.names().join(", ")
            ));
            p.report(&name.span, msg);
        }
        found
    }

    pub fn events(
        &self,
        p: &mut Problems,
        subject: &str,
        names: &[Located<&str>],
    ) -> Vec<EventTypeId> {
        names
            .iter()
            .filter_map(|n| self.event(p, subject, n))
            .collect()
    }
}
