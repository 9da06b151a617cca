//! Tickets: the report form's fields, numbering, the workflow and its rules, messages, processing records,
//! the audit log and notifications. The HTTP layer (`crate::api::tickets`) checks who calls and parses;
//! this module decides and writes, each change in one transaction together with its audit entries and
//! notifications.
//!
//! **Numbers** are `GD` + the business day (`yyyymmdd` in `tickets.time_zone`) + a daily serial of at least
//! four digits, taken from `ticket_serials` in the same transaction that inserts the ticket (an upsert, so
//! concurrent creations never share a serial). The 10,000th ticket of a day widens the serial to five
//! digits (`GD2023102710000`): numbers stay unique and no ticket is refused.
//!
//! **Workflow** ([`Status`], [`Action`], [`transition`]): received -> (awaiting approval, when the approval
//! rules say so for the priority) -> assigned -> in progress -> awaiting customer confirmation -> done; the
//! reporter either confirms (done) or reports it unsolved with a reason (back to in progress, same assignee,
//! `reopen_count` + 1).

pub mod assist;
pub mod desk;
pub mod list;
pub mod notify;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::accounts::{Role, User};

macro_rules! word_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $w:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v,)* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            pub fn as_str(self) -> &'static str { match self { $($name::$v => $w,)* } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<$name, String> {
                match s {
                    $($w => Ok($name::$v),)*
                    _ => Err(format!(
                        "{:?} is not one of {:?}", s, [$($w),*]
                    )),
                }
            }
        }
    };
}

word_enum! {
    /// The type of a ticket.
    Kind {
        /// Hardware fault.
        Hardware = "hardware",
        /// Software error.
        Software = "software",
        /// How-to question.
        HowTo = "how_to",
        Other = "other",
    }
}

word_enum! {
    /// How urgent a ticket is.
    Priority {
        /// Core business stopped.
        Urgent = "urgent",
        /// Part of the business affected.
        High = "high",
        /// Can wait.
        Medium = "medium",
        Low = "low",
    }
}

word_enum! {
    /// Where a ticket is in its workflow.
    Status {
        Received = "received",
        /// Waiting for a supervisor's approval before it can be assigned (approval rules).
        AwaitingApproval = "awaiting_approval",
        Assigned = "assigned",
        InProgress = "in_progress",
        /// The assignee says it is solved; the reporter confirms or reports it unsolved.
        AwaitingConfirmation = "awaiting_confirmation",
        Done = "done",
    }
}

/// A change of status, and who may make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Supervisor: awaiting approval -> received.
    Approve,
    /// Supervisor: received/assigned -> assigned, in progress -> in progress (reassignment).
    Assign,
    /// Assignee (or supervisor): assigned -> in progress.
    Start,
    /// Assignee (or supervisor): in progress -> awaiting confirmation.
    Resolve,
    /// Reporter: awaiting confirmation -> done.
    Confirm,
    /// Reporter, with a reason: awaiting confirmation -> in progress (a reopen).
    Reject,
}

/// The facts about a ticket that decide who may do what.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub status: Status,
    pub reporter_id: i64,
    pub assignee_id: Option<i64>,
}

/// The status `action` leads to from `f.status` when `by` does it, or `None` if it may not.
pub fn transition(f: Facts, action: Action, by: &User) -> Option<Status> {
    use Status as S;
    let supervisor = by.role >= Role::Supervisor;
    let assignee = f.assignee_id == Some(by.id) && by.role.is_staff();
    let reporter = f.reporter_id == by.id;
    match (action, f.status) {
        (Action::Approve, S::AwaitingApproval) if supervisor => Some(S::Received),
        (Action::Assign, S::Received | S::Assigned) if supervisor => Some(S::Assigned),
        (Action::Assign, S::InProgress) if supervisor => Some(S::InProgress),
        (Action::Start, S::Assigned) if assignee || supervisor => Some(S::InProgress),
        (Action::Resolve, S::InProgress) if assignee || supervisor => Some(S::AwaitingConfirmation),
        (Action::Confirm, S::AwaitingConfirmation) if reporter => Some(S::Done),
        (Action::Reject, S::AwaitingConfirmation) if reporter => Some(S::InProgress),
        _ => None,
    }
}

/// The statuses `by` may move the ticket to now through `POST .../status` (start, resolve, confirm, reject).
pub fn allowed_statuses(f: Facts, by: &User) -> Vec<Status> {
    let mut v: Vec<Status> = [
        Action::Start,
        Action::Resolve,
        Action::Confirm,
        Action::Reject,
    ]
    .into_iter()
    .filter_map(|a| transition(f, a, by))
    .collect();
    v.dedup();
    v
}

/// The action that moves `f` to `to` for `by`, if any.
pub fn action_to(f: Facts, to: Status, by: &User) -> Option<Action> {
    [
        Action::Start,
        Action::Resolve,
        Action::Confirm,
        Action::Reject,
    ]
    .into_iter()
    .find(|a| transition(f, *a, by) == Some(to))
}

/// The ticket number for `serial` on business day `day` (`yyyymmdd`).
pub fn number(day: &str, serial: i64) -> String {
    format!("GD{day}{serial:04}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, role: Role) -> User {
        User {
            id,
            employee_id: id.to_string(),
            email: None,
            name: String::new(),
            department: String::new(),
            contact: String::new(),
            phone: None,
            role,
            must_change_password: false,
            phone_verified: true,
            disabled: false,
            created_at: String::new(),
        }
    }

    #[test]
    fn wire_words_are_the_snake_case_names() {
        for k in Kind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for p in Priority::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        for s in Status::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn numbers_have_four_digits_and_widen_past_9999() {
        assert_eq!(number("20231027", 1), "GD202310270001");
        assert_eq!(number("20231027", 9999), "GD202310279999");
        assert_eq!(number("20231027", 10_000), "GD2023102710000");
    }

    #[test]
    fn the_workflow_admits_only_its_transitions_and_only_for_the_right_people() {
        let (cust, tech, other, sup) = (
            user(1, Role::Customer),
            user(2, Role::Technician),
            user(3, Role::Technician),
            user(4, Role::Supervisor),
        );
        let f = |status| Facts {
            status,
            reporter_id: 1,
            assignee_id: Some(2),
        };
        use Status as S;
        assert_eq!(
            transition(f(S::AwaitingApproval), Action::Approve, &sup),
            Some(S::Received)
        );
        assert_eq!(
            transition(f(S::AwaitingApproval), Action::Approve, &tech),
            None
        );
        assert_eq!(
            transition(f(S::AwaitingApproval), Action::Assign, &sup),
            None
        );
        assert_eq!(
            transition(f(S::Received), Action::Assign, &sup),
            Some(S::Assigned)
        );
        assert_eq!(
            transition(f(S::Assigned), Action::Start, &tech),
            Some(S::InProgress)
        );
        assert_eq!(transition(f(S::Assigned), Action::Start, &other), None);
        assert_eq!(
            transition(f(S::InProgress), Action::Resolve, &tech),
            Some(S::AwaitingConfirmation)
        );
        assert_eq!(
            transition(f(S::AwaitingConfirmation), Action::Confirm, &tech),
            None
        );
        assert_eq!(
            transition(f(S::AwaitingConfirmation), Action::Confirm, &cust),
            Some(S::Done)
        );
        assert_eq!(
            transition(f(S::AwaitingConfirmation), Action::Reject, &cust),
            Some(S::InProgress)
        );
        assert_eq!(transition(f(S::Done), Action::Reject, &cust), None);
        assert_eq!(
            allowed_statuses(f(S::AwaitingConfirmation), &cust),
            vec![S::Done, S::InProgress]
        );
        assert!(allowed_statuses(f(S::Done), &sup).is_empty());
        // Every status a caller may reach through the status endpoint has exactly one action.
        for s in Status::ALL {
            for u in [&cust, &tech, &other, &sup] {
                for to in allowed_statuses(f(*s), u) {
                    assert!(action_to(f(*s), to, u).is_some());
                }
            }
        }
    }
}
