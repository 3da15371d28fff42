//! The exports customers actually drop (docs/formats.md#layouts): Google
//! Workspace, Entra ID, Okta, OneRoster, Active Directory, BambooHR, Workday
//! and ADP Workforce Now, each recognised from its header by a signature of
//! distinctive columns. A layout decides which column fills a field where
//! two could (OneRoster's `sourcedId` over `username`), what the values of
//! `enabled` and `transaction` mean in that export (Okta's `SUSPENDED`,
//! OneRoster's `tobedeleted`), how a manager is named, and which columns
//! hold secrets. A file that matches no layout is `generic` and is read
//! exactly as before layouts existed. This module must never read rows: it
//! knows header names and vocabularies only.

use super::schema::{normalize_header, FieldKind};

/// A recognised export layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    Generic,
    GoogleWorkspace,
    Entra,
    Okta,
    OneRoster,
    ActiveDirectory,
    BambooHr,
    Workday,
    Adp,
}

/// What a column of a layout is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The column fills these fields (Google's `Email Address` is both the
    /// user_id and the email).
    Fill(&'static [FieldKind]),
    /// Known to the layout but not imported (the loser of two columns that
    /// could fill one field).
    Ignore,
    /// A password or a hash: never read, stored, logged or written back.
    Secret,
    /// The row's own distinguished name, through which a manager named by
    /// DN (Active Directory's `Manager`) is found.
    DistinguishedName,
}

/// One layout: its name, how it is recognised, what its columns mean.
#[derive(Debug)]
pub struct Def {
    pub layout: Layout,
    /// The name in the outcome and in `layout = "..."`.
    pub name: &'static str,
    /// The system, for people.
    pub title: &'static str,
    /// Every one of these headers (compared as headers are) must be there.
    signature: &'static [&'static str],
    columns: &'static [(&'static str, Role)],
    /// The vendor's documented header, in the vendor's order (`userdrop
    /// template --layout`).
    pub header: &'static [&'static str],
    /// Values of `enabled` this export uses, on top of the generic words.
    pub enabled: &'static [(&'static str, bool)],
    /// Values of `transaction` this export uses: (value, deletes the user).
    pub transaction: &'static [(&'static str, bool)],
}

use FieldKind as F;
use Role::{DistinguishedName, Fill, Ignore, Secret};

/// Header names that always hold a secret, in any layout (compared as
/// headers are).
const SECRET_NAMES: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "password hash",
    "password hash function",
    "hash function",
    "user password",
    "unicodePwd",
    "initial password",
    "temporary password",
    "new password",
];

const GENERIC: Def = Def {
    layout: Layout::Generic,
    name: "generic",
    title: "no particular system",
    signature: &[],
    columns: &[],
    header: &[],
    enabled: &[],
    transaction: &[],
};

const GOOGLE: Def = Def {
    layout: Layout::GoogleWorkspace,
    name: "google_workspace",
    title: "Google Workspace (Admin console user download)",
    signature: &["Email Address", "Org Unit Path"],
    columns: &[
        ("Email Address", Fill(&[F::UserId, F::Email])),
        ("Status", Fill(&[F::Enabled])),
        ("Manager Email", Fill(&[F::ReportsTo])),
        ("Mobile Phone", Fill(&[F::MobileNumber])),
        ("Password", Secret),
        ("Password Hash Function", Secret),
    ],
    header: &[
        "First Name [Required]",
        "Last Name [Required]",
        "Email Address [Required]",
        "Password [Required]",
        "Password Hash Function [UPLOAD ONLY]",
        "Org Unit Path [Required]",
        "New Primary Email [UPLOAD ONLY]",
        "Status [READ ONLY]",
        "Last Sign In [READ ONLY]",
        "Recovery Email",
        "Home Secondary Email",
        "Work Secondary Email",
        "Recovery Phone [MUST BE IN THE E.164 FORMAT]",
        "Work Phone",
        "Home Phone",
        "Mobile Phone",
        "Work Address",
        "Home Address",
        "Employee ID",
        "Employee Type",
        "Employee Title",
        "Manager Email",
        "Department",
        "Cost Center",
        "2sv Enrolled [READ ONLY]",
        "2sv Enforced [READ ONLY]",
        "Building ID",
        "Floor Name",
        "Floor Section",
        "Email Usage [READ ONLY]",
        "Drive Usage [READ ONLY]",
        "Total Storage [READ ONLY]",
        "New Status [UPLOAD ONLY]",
        "Change Password at Next Sign-In",
        "Advanced Protection Program enrollment",
    ],
    enabled: &[("Active", true), ("Suspended", false), ("Archived", false)],
    transaction: &[],
};

const ENTRA: Def = Def {
    layout: Layout::Entra,
    name: "entra",
    title: "Microsoft Entra ID (Download users)",
    signature: &["userPrincipalName", "objectId", "accountEnabled"],
    columns: &[
        ("objectId", Fill(&[F::UserId])),
        ("userPrincipalName", Ignore),
        ("accountEnabled", Fill(&[F::Enabled])),
        ("mail", Fill(&[F::Email])),
        ("mobile", Fill(&[F::MobileNumber])),
    ],
    header: &[
        "userPrincipalName",
        "displayName",
        "surname",
        "mail",
        "givenName",
        "objectId",
        "userType",
        "jobTitle",
        "department",
        "accountEnabled",
        "usageLocation",
        "streetAddress",
        "state",
        "country",
        "physicalDeliveryOfficeName",
        "city",
        "postalCode",
        "telephoneNumber",
        "mobile",
        "authenticationAlternativePhoneNumber",
        "authenticationEmail",
        "alternateEmailAddress",
        "ageGroup",
        "consentProvidedForMinor",
        "legalAgeGroupClassification",
    ],
    enabled: &[],
    transaction: &[],
};

const OKTA: Def = Def {
    layout: Layout::Okta,
    name: "okta",
    title: "Okta (user export)",
    signature: &["login", "secondEmail", "primaryPhone"],
    columns: &[
        ("login", Fill(&[F::UserId])),
        ("status", Fill(&[F::Enabled])),
        ("manager", Fill(&[F::ReportsTo])),
        ("managerId", Ignore),
        ("employeeNumber", Ignore),
        ("email", Fill(&[F::Email])),
        ("mobilePhone", Fill(&[F::MobileNumber])),
        ("countryCode", Fill(&[F::Country])),
    ],
    header: &[
        "id",
        "status",
        "created",
        "activated",
        "statusChanged",
        "lastLogin",
        "lastUpdated",
        "passwordChanged",
        "login",
        "firstName",
        "lastName",
        "middleName",
        "honorificPrefix",
        "honorificSuffix",
        "email",
        "title",
        "displayName",
        "nickName",
        "profileUrl",
        "secondEmail",
        "mobilePhone",
        "primaryPhone",
        "streetAddress",
        "city",
        "state",
        "zipCode",
        "countryCode",
        "postalAddress",
        "preferredLanguage",
        "locale",
        "timezone",
        "userType",
        "employeeNumber",
        "costCenter",
        "organization",
        "division",
        "department",
        "managerId",
        "manager",
    ],
    enabled: &[
        ("ACTIVE", true),
        ("STAGED", true),
        ("PROVISIONED", true),
        ("RECOVERY", true),
        ("PASSWORD_EXPIRED", true),
        ("LOCKED_OUT", true),
        ("SUSPENDED", false),
        ("DEPROVISIONED", false),
    ],
    transaction: &[],
};

const ONEROSTER: Def = Def {
    layout: Layout::OneRoster,
    name: "oneroster",
    title: "OneRoster 1.1/1.2 users.csv",
    signature: &["sourcedId", "enabledUser"],
    columns: &[
        ("sourcedId", Fill(&[F::UserId])),
        ("username", Ignore),
        ("status", Fill(&[F::Transaction])),
        ("enabledUser", Fill(&[F::Enabled])),
        ("sms", Fill(&[F::MobileNumber])),
        ("phone", Ignore),
        ("password", Secret),
    ],
    header: &[
        "sourcedId",
        "status",
        "dateLastModified",
        "enabledUser",
        "orgSourcedIds",
        "role",
        "username",
        "userIds",
        "givenName",
        "familyName",
        "middleName",
        "identifier",
        "email",
        "sms",
        "phone",
        "agentSourcedIds",
        "grades",
        "password",
    ],
    enabled: &[],
    transaction: &[("active", false), ("tobedeleted", true)],
};

const ACTIVE_DIRECTORY: Def = Def {
    layout: Layout::ActiveDirectory,
    name: "active_directory",
    title: "Active Directory (PowerShell Get-ADUser | Export-Csv)",
    signature: &["SamAccountName", "DistinguishedName"],
    columns: &[
        ("SamAccountName", Fill(&[F::UserId])),
        ("EmailAddress", Fill(&[F::Email])),
        ("mail", Ignore),
        ("Manager", Fill(&[F::ReportsTo])),
        ("DistinguishedName", DistinguishedName),
        ("Country", Fill(&[F::Country])),
        ("countryCode", Ignore),
        ("MobilePhone", Fill(&[F::MobileNumber])),
    ],
    header: &[
        "AccountExpirationDate",
        "accountExpires",
        "AccountLockoutTime",
        "AccountNotDelegated",
        "AllowReversiblePasswordEncryption",
        "BadLogonCount",
        "CannotChangePassword",
        "CanonicalName",
        "City",
        "CN",
        "Company",
        "Country",
        "countryCode",
        "Created",
        "Deleted",
        "Department",
        "Description",
        "DisplayName",
        "DistinguishedName",
        "Division",
        "EmailAddress",
        "EmployeeID",
        "EmployeeNumber",
        "Enabled",
        "Fax",
        "GivenName",
        "HomeDirectory",
        "HomePhone",
        "Initials",
        "LastLogonDate",
        "LockedOut",
        "mail",
        "Manager",
        "MemberOf",
        "MobilePhone",
        "Modified",
        "Name",
        "ObjectClass",
        "ObjectGUID",
        "Office",
        "OfficePhone",
        "Organization",
        "PasswordExpired",
        "PasswordLastSet",
        "PasswordNeverExpires",
        "PasswordNotRequired",
        "PostalCode",
        "SamAccountName",
        "SID",
        "sn",
        "State",
        "StreetAddress",
        "Surname",
        "Title",
        "userAccountControl",
        "UserPrincipalName",
        "whenChanged",
        "whenCreated",
    ],
    enabled: &[],
    transaction: &[],
};

const BAMBOOHR: Def = Def {
    layout: Layout::BambooHr,
    name: "bamboohr",
    title: "BambooHR (custom report)",
    signature: &["Employee #", "Supervisor EID"],
    columns: &[
        ("Employee #", Fill(&[F::UserId])),
        ("Supervisor EID", Fill(&[F::ReportsTo])),
        ("Work Email", Fill(&[F::Email])),
        ("Status", Fill(&[F::Enabled])),
        ("Mobile Phone", Fill(&[F::MobileNumber])),
    ],
    header: &[
        "Employee #",
        "Status",
        "First Name",
        "Last Name",
        "Preferred Name",
        "Work Email",
        "Home Email",
        "Mobile Phone",
        "Work Phone",
        "Job Title",
        "Department",
        "Division",
        "Location",
        "Country",
        "State",
        "Hire Date",
        "Supervisor",
        "Supervisor EID",
    ],
    enabled: &[],
    transaction: &[],
};

const WORKDAY: Def = Def {
    layout: Layout::Workday,
    name: "workday",
    title: "Workday (worker report)",
    signature: &["Employee ID", "Legal Last Name", "Active Status"],
    columns: &[
        ("Employee ID", Fill(&[F::UserId])),
        ("Legal First Name", Fill(&[F::FirstName])),
        ("Legal Last Name", Fill(&[F::LastName])),
        ("Preferred First Name", Ignore),
        ("Preferred Last Name", Ignore),
        ("Primary Work Email", Fill(&[F::Email])),
        ("Primary Work Mobile Phone", Fill(&[F::MobileNumber])),
        ("Manager Employee ID", Fill(&[F::ReportsTo])),
        ("Active Status", Fill(&[F::Enabled])),
    ],
    header: &[
        "Employee ID",
        "Worker",
        "Legal First Name",
        "Legal Last Name",
        "Preferred First Name",
        "Preferred Last Name",
        "Primary Work Email",
        "Primary Work Phone",
        "Primary Work Mobile Phone",
        "Business Title",
        "Supervisory Organization",
        "Manager",
        "Manager Employee ID",
        "Location",
        "Country",
        "Worker Type",
        "Hire Date",
        "Termination Date",
        "Active Status",
    ],
    enabled: &[],
    transaction: &[],
};

const ADP: Def = Def {
    layout: Layout::Adp,
    name: "adp",
    title: "ADP Workforce Now (custom report)",
    signature: &["Associate ID", "Position Status"],
    columns: &[
        ("Associate ID", Fill(&[F::UserId])),
        ("Position Status", Fill(&[F::Enabled])),
        ("Reports To Associate ID", Fill(&[F::ReportsTo])),
        ("Work Email", Fill(&[F::Email])),
        ("Personal Mobile", Fill(&[F::MobileNumber])),
    ],
    header: &[
        "Associate ID",
        "Position ID",
        "File Number",
        "First Name",
        "Last Name",
        "Preferred Name",
        "Work Contact: Work Email",
        "Personal Contact: Personal Email",
        "Work Contact: Work Phone",
        "Personal Contact: Personal Mobile",
        "Job Title Description",
        "Home Department Description",
        "Location Description",
        "Position Status",
        "Hire Date",
        "Termination Date",
        "Reports To Name",
        "Reports To Associate ID",
    ],
    enabled: &[("Active", true), ("Leave", true), ("Terminated", false)],
    transaction: &[],
};

/// Every named layout, in the order they are tried.
const DEFS: &[&Def] = &[
    &GOOGLE,
    &ENTRA,
    &OKTA,
    &ONEROSTER,
    &ACTIVE_DIRECTORY,
    &BAMBOOHR,
    &WORKDAY,
    &ADP,
];

impl Layout {
    /// Every layout but `generic`, in recognition order.
    pub fn all() -> impl Iterator<Item = Layout> {
        DEFS.iter().map(|d| d.layout)
    }

    pub fn def(self) -> &'static Def {
        DEFS.iter()
            .copied()
            .find(|d| d.layout == self)
            .unwrap_or(&GENERIC)
    }

    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// The layout of a name (`"oneroster"`), `generic` included.
    pub fn parse(name: &str) -> Option<Layout> {
        std::iter::once(&GENERIC)
            .chain(DEFS.iter().copied())
            .find(|d| d.name == name)
            .map(|d| d.layout)
    }

    /// Every name [`Layout::parse`] accepts.
    pub fn names() -> Vec<&'static str> {
        std::iter::once(GENERIC.name)
            .chain(DEFS.iter().map(|d| d.name))
            .collect()
    }

    /// The first layout whose signature columns are all in `normalized`
    /// (headers passed through [`normalize_header`]); `generic` otherwise.
    pub fn recognise(normalized: &[String]) -> Layout {
        DEFS.iter()
            .find(|d| {
                d.signature
                    .iter()
                    .all(|s| normalized.contains(&normalize_header(s)))
            })
            .map(|d| d.layout)
            .unwrap_or(Layout::Generic)
    }
}

impl Def {
    /// What the layout says a header (normalised) is for, if anything;
    /// secrets are secrets in every layout.
    pub fn role(&self, normalized: &str) -> Option<Role> {
        self.columns
            .iter()
            .find(|(name, _)| normalize_header(name) == normalized)
            .map(|(_, role)| *role)
            .or_else(|| is_secret(normalized).then_some(Role::Secret))
    }

    /// The meaning of an `enabled` value: the layout's words first, then
    /// the generic ones; any case.
    pub fn enabled(&self, v: &str) -> Option<bool> {
        self.enabled
            .iter()
            .find(|(w, _)| v.eq_ignore_ascii_case(w))
            .map(|(_, b)| *b)
            .or_else(|| super::cell::parse_bool(v))
    }

    /// The words `enabled` accepts, for messages.
    pub fn enabled_words(&self) -> String {
        let own: Vec<&str> = self.enabled.iter().map(|(w, _)| *w).collect();
        if own.is_empty() {
            "true/false, yes/no, 1/0 or active/inactive".to_string()
        } else {
            format!(
                "{} (or true/false, yes/no, 1/0, active/inactive)",
                own.join(", ")
            )
        }
    }

    /// Whether a `transaction` value deletes the user: Some(true) delete,
    /// Some(false) create or update, None not understood.
    pub fn transaction(&self, v: &str) -> Option<bool> {
        if v.is_empty() {
            return Some(false);
        }
        if v.eq_ignore_ascii_case("delete") {
            return Some(true);
        }
        self.transaction
            .iter()
            .find(|(w, _)| v.eq_ignore_ascii_case(w))
            .map(|(_, d)| *d)
    }
}

/// Whether a header (normalised) names a column of passwords or hashes.
pub fn is_secret(normalized: &str) -> bool {
    SECRET_NAMES
        .iter()
        .any(|s| normalize_header(s) == normalized)
}

/// A distinguished name as compared: trimmed, lower case, no spaces after
/// the commas (`CN=Ann Archer, OU=Staff` and `cn=ann archer,ou=staff` are
/// one DN).
pub fn dn_key(dn: &str) -> String {
    dn.trim()
        .split(',')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| normalize_header(s)).collect()
    }

    #[test]
    fn each_vendor_header_is_recognised_as_its_layout() {
        for layout in Layout::all() {
            let def = layout.def();
            assert_eq!(Layout::recognise(&norm(def.header)), layout, "{}", def.name);
            assert_eq!(Layout::parse(def.name), Some(layout));
        }
        assert_eq!(
            Layout::recognise(&norm(&["userId", "email", "status"])),
            Layout::Generic
        );
    }

    #[test]
    fn vocabularies() {
        let okta = Layout::Okta.def();
        assert_eq!(okta.enabled("suspended"), Some(false));
        assert_eq!(okta.enabled("LOCKED_OUT"), Some(true));
        assert_eq!(okta.enabled("true"), Some(true));
        assert_eq!(okta.enabled("gone"), None);
        assert!(okta.enabled_words().contains("DEPROVISIONED"));
        let or = Layout::OneRoster.def();
        assert_eq!(or.transaction("tobedeleted"), Some(true));
        assert_eq!(or.transaction("active"), Some(false));
        assert_eq!(or.transaction("purge"), None);
        assert_eq!(Layout::Generic.def().transaction("active"), None);
    }

    #[test]
    fn secrets_and_dns() {
        let g = Layout::GoogleWorkspace.def();
        assert_eq!(
            g.role(&normalize_header("Password [Required]")),
            Some(Role::Secret)
        );
        assert_eq!(Layout::Generic.def().role("password"), Some(Role::Secret));
        assert_eq!(Layout::Generic.def().role("passwordlastset"), None);
        assert_eq!(
            dn_key(" CN=Ann Archer, OU=Staff,DC=acme "),
            "cn=ann archer,ou=staff,dc=acme"
        );
    }
}
