//! Rows of the business tables, from a fixed-seed generator.

use super::schema::{INDUSTRIES, LEAD_SOURCES};
use super::{Currency, Row, SystemUser, format_guid};
use crate::format::{days_from_civil, iso_from_unix, round_to};
use serde_json::Value;
use std::collections::BTreeMap;

const SEED: u64 = 0x00C0_FFEE_5A1E_5D47;

pub const ACCOUNTS: usize = 300;
pub const CONTACTS: usize = 800;
pub const OPPORTUNITIES: usize = 2_000;
pub const LEADS: usize = 60_000;
pub const INCIDENTS: usize = 900;

/// Leads without `createdon`, a deliberate edge case: a client that splits a
/// query into `createdon` ranges (`ge`/`lt`) must not lose them, since no range
/// condition matches a null. All are open, so they are in "Open Leads". The
/// indices are fixed so the rest of the generated data does not move.
pub const LEADS_WITHOUT_CREATEDON: [usize; 7] =
    [137, 8_801, 17_602, 26_403, 35_204, 44_005, 52_806];

/// The bench table for cost measurements: logical name, row count.
pub const BENCH_ENTITY: &str = "new_benchrecord";
pub const BENCH_ROWS: usize = 200_000;
const BENCH_SEED: u64 = 0x0BE4_C4ED_0200_0000;

const COMPANY_STEMS: &[&str] = &[
    "Contoso",
    "Fabrikam",
    "Adventure Works",
    "Northwind",
    "Litware",
    "Tailspin",
    "Woodgrove",
    "Proseware",
    "Wide World",
    "Blue Yonder",
    "Alpine Ski",
    "Coho",
    "Fourth Coffee",
    "Lucerne",
    "Margie's",
    "Humongous",
    "Trey Research",
    "Wingtip",
    "Graphic Design",
    "City Power",
];
const COMPANY_SUFFIXES: &[&str] = &[
    "Inc.",
    "Ltd.",
    "Group",
    "Holdings",
    "Partners",
    "Labs",
    "Systems",
    "Industries",
    "Traders",
    "Logistics",
    "Foods",
    "Energy",
    "Media",
    "Health",
    "Bank",
];
const FIRST_NAMES: &[&str] = &[
    "Ava", "Ben", "Carla", "Diego", "Elena", "Finn", "Grace", "Hugo", "Iris", "Jonas", "Kira",
    "Liam", "Maya", "Noah", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
    "Wes", "Xena", "Yuki", "Zane", "Amara", "Bilal", "Chloé", "Dmitri",
];
const LAST_NAMES: &[&str] = &[
    "Anders", "Brown", "Costa", "Dubois", "Eriksen", "Fischer", "García", "Hughes", "Ivanova",
    "Jensen", "Khan", "Lopez", "Meyer", "Novak", "O'Brien", "Patel", "Quist", "Rossi", "Schmidt",
    "Tanaka", "Usman", "Varga", "Walsh", "Xu", "Yilmaz", "Zhang",
];
const CITIES: &[&str] = &[
    "Seattle", "Redmond", "Chicago", "Austin", "Boston", "Dublin", "Munich", "Paris", "Madrid",
    "Toronto",
];
const JOB_TITLES: &[&str] = &[
    "Purchasing Manager",
    "CFO",
    "IT Director",
    "Operations Lead",
    "Buyer",
    "CEO",
    "Procurement Specialist",
    "Head of Sales",
];
const PRODUCTS: &[&str] = &[
    "Laptops",
    "Service Contract",
    "Cloud Licences",
    "Printers",
    "Support Renewal",
    "Network Upgrade",
    "Training Package",
    "Servers",
];
const CASE_TITLES: &[&str] = &[
    "Invoice is wrong",
    "Cannot sign in",
    "Delivery delayed",
    "Product stopped working",
    "Request for refund",
    "Question about licence",
    "Damaged on arrival",
    "Password reset",
];

/// 2022-01-01T00:00:00Z .. 2025-06-30T00:00:00Z: when the sample records were created.
fn created_range() -> (i64, i64) {
    (
        days_from_civil(2022, 1, 1) * 86_400,
        days_from_civil(2025, 6, 30) * 86_400,
    )
}

struct Gen {
    rng: fastrand::Rng,
    version: i64,
}

impl Gen {
    fn guid(&mut self) -> String {
        format_guid(self.rng.u64(..), self.rng.u64(..))
    }

    fn chance(&mut self, probability: f64) -> bool {
        self.rng.f64() < probability
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.usize(..items.len())]
    }

    fn between(&mut self, low: i64, high: i64) -> i64 {
        self.rng.i64(low..=high)
    }

    /// A whole-minute instant in `[low, high)` seconds.
    fn instant(&mut self, low: i64, high: i64) -> i64 {
        let seconds = self.between(low, high - 1);
        seconds - seconds % 60
    }

    fn version(&mut self) -> i64 {
        self.version += 1 + self.rng.i64(0..5);
        self.version
    }

    fn person(&mut self) -> (String, String) {
        (
            self.pick(FIRST_NAMES).to_string(),
            self.pick(LAST_NAMES).to_string(),
        )
    }

    /// The owner: mostly the sales people, a few records owned by the
    /// application user (records it created through integrations).
    fn owner<'a>(&mut self, users: &'a [SystemUser]) -> &'a SystemUser {
        if self.chance(0.04) {
            &users[0]
        } else {
            &users[1 + self.rng.usize(..users.len() - 1)]
        }
    }
}

fn put(row: &mut Row, key: &str, value: impl Into<Value>) {
    row.insert(key.to_string(), value.into());
}

fn put_opt<V: Into<Value>>(row: &mut Row, key: &str, value: Option<V>) {
    if let Some(value) = value {
        row.insert(key.to_string(), value.into());
    }
}

/// Puts a money column, its `_base` twin and the row's currency.
fn put_money(row: &mut Row, key: &str, amount: Option<f64>, currency: &Currency) {
    if let Some(amount) = amount {
        let amount = round_to(amount, 2);
        put(row, key, amount);
        put(
            row,
            &format!("{key}_base"),
            round_to(amount / currency.exchangerate, 2),
        );
    }
}

fn put_currency(row: &mut Row, currency: &Currency) {
    put(row, "transactioncurrencyid", currency.id.clone());
    put(row, "exchangerate", currency.exchangerate);
}

fn put_common(row: &mut Row, g: &mut Gen, users: &[SystemUser], state: i64, status: i64) {
    let (low, high) = created_range();
    put(row, "statecode", state);
    put(row, "statuscode", status);
    put(row, "createdon", iso_from_unix(g.instant(low, high)));
    put(row, "ownerid", g.owner(users).id.clone());
    let version = g.version();
    put(row, "versionnumber", version);
}

fn pick_currency<'a>(g: &mut Gen, currencies: &'a [Currency], foreign_share: f64) -> &'a Currency {
    let foreign = g.chance(foreign_share);
    currencies
        .iter()
        .find(|c| c.is_base != foreign)
        .unwrap_or(&currencies[0])
}

/// Rows of account, contact, opportunity, lead and incident.
pub fn business_tables(
    users: &[SystemUser],
    currencies: &[Currency],
) -> BTreeMap<String, Vec<Row>> {
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(SEED),
        version: 1_000_000,
    };
    let mut accounts = accounts(&mut g, users, currencies);
    let contacts = contacts(&mut g, users, currencies, &accounts);
    link_primary_contacts(&mut g, &mut accounts, &contacts);
    let opportunities = opportunities(&mut g, users, currencies, &accounts);
    let leads = leads(&mut g, users, currencies);
    let incidents = incidents(&mut g, users, &accounts);
    BTreeMap::from([
        ("account".to_string(), accounts),
        ("contact".to_string(), contacts),
        ("opportunity".to_string(), opportunities),
        ("lead".to_string(), leads),
        ("incident".to_string(), incidents),
    ])
}

fn accounts(g: &mut Gen, users: &[SystemUser], currencies: &[Currency]) -> Vec<Row> {
    let mut names: Vec<String> = COMPANY_STEMS
        .iter()
        .flat_map(|stem| COMPANY_SUFFIXES.iter().map(move |s| format!("{stem} {s}")))
        .collect();
    g.rng.shuffle(&mut names);
    (0..ACCOUNTS)
        .map(|i| {
            let mut row = Row::new();
            put(&mut row, "accountid", g.guid());
            put(&mut row, "name", names[i % names.len()].clone());
            let number = g.chance(0.8).then(|| format!("ACC-{:05}", 10_000 + i));
            put_opt(&mut row, "accountnumber", number);
            let city = g.chance(0.9).then(|| g.pick(CITIES).to_string());
            put_opt(&mut row, "address1_city", city);
            let currency = pick_currency(g, currencies, 0.2);
            let revenue = g
                .chance(0.75)
                .then(|| g.between(50_000, 50_000_000) as f64 + g.between(0, 99) as f64 / 100.0);
            put_money(&mut row, "revenue", revenue, currency);
            let employees = g.chance(0.85).then(|| g.between(5, 20_000));
            put_opt(&mut row, "numberofemployees", employees);
            let industry = g.chance(0.9).then(|| g.pick(INDUSTRIES).0);
            put_opt(&mut row, "industrycode", industry);
            put_currency(&mut row, currency);
            let state = i64::from(g.chance(0.1));
            put_common(&mut row, g, users, state, state + 1);
            row
        })
        .collect()
}

fn id_of(row: &Row, key: &str) -> String {
    row.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn contacts(
    g: &mut Gen,
    users: &[SystemUser],
    currencies: &[Currency],
    accounts: &[Row],
) -> Vec<Row> {
    (0..CONTACTS)
        .map(|_| {
            let mut row = Row::new();
            let (first, last) = g.person();
            put(&mut row, "contactid", g.guid());
            put(&mut row, "fullname", format!("{first} {last}"));
            put(&mut row, "firstname", first.clone());
            put(&mut row, "lastname", last.clone());
            let email = g.chance(0.8).then(|| {
                format!(
                    "{}.{}{}@example.com",
                    first.to_lowercase(),
                    last.to_lowercase().replace('\'', ""),
                    g.between(1, 99)
                )
            });
            put_opt(&mut row, "emailaddress1", email);
            let title = g.chance(0.9).then(|| g.pick(JOB_TITLES).to_string());
            put_opt(&mut row, "jobtitle", title);
            let currency = pick_currency(g, currencies, 0.15);
            let income = g.chance(0.6).then(|| (g.between(25, 250) * 1_000) as f64);
            put_money(&mut row, "annualincome", income, currency);
            let parent = g.chance(0.9).then(|| id_of(g.pick(accounts), "accountid"));
            put_opt(&mut row, "parentcustomerid", parent);
            put_currency(&mut row, currency);
            let state = i64::from(g.chance(0.15));
            put_common(&mut row, g, users, state, state + 1);
            row
        })
        .collect()
}

fn link_primary_contacts(g: &mut Gen, accounts: &mut [Row], contacts: &[Row]) {
    for account in accounts.iter_mut() {
        let id = id_of(account, "accountid");
        let candidates: Vec<&Row> = contacts
            .iter()
            .filter(|c| c.get("parentcustomerid").and_then(Value::as_str) == Some(id.as_str()))
            .collect();
        if !candidates.is_empty() && g.chance(0.8) {
            let contact = g.pick(&candidates);
            put(account, "primarycontactid", id_of(contact, "contactid"));
        }
    }
}

fn opportunities(
    g: &mut Gen,
    users: &[SystemUser],
    currencies: &[Currency],
    accounts: &[Row],
) -> Vec<Row> {
    let (created_low, created_high) = created_range();
    let horizon = days_from_civil(2026, 6, 30) * 86_400;
    (0..OPPORTUNITIES)
        .map(|_| {
            let mut row = Row::new();
            put(&mut row, "opportunityid", g.guid());
            let account = g.chance(0.95).then(|| g.pick(accounts));
            let customer_name = account
                .and_then(|a| a.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("Walk-in customer");
            let product = g.pick(PRODUCTS);
            put(
                &mut row,
                "name",
                format!("{} {product} for {customer_name}", g.between(1, 200)),
            );
            if let Some(account) = account {
                let id = id_of(account, "accountid");
                put(&mut row, "customerid", id.clone());
                put(&mut row, "parentaccountid", id);
            }
            let currency = pick_currency(g, currencies, 0.25);
            let estimated = g
                .chance(0.95)
                .then(|| g.between(5_000, 500_000) as f64 + g.between(0, 99) as f64 / 100.0);
            put_money(&mut row, "estimatedvalue", estimated, currency);
            let created = g.instant(created_low, created_high);
            let roll = g.rng.f64();
            let (state, status) = if roll < 0.55 {
                (0, if g.chance(0.85) { 1 } else { 2 })
            } else if roll < 0.80 {
                (1, 3)
            } else {
                (2, if g.chance(0.5) { 4 } else { 5 })
            };
            let probability = match state {
                0 => g.chance(0.85).then(|| g.between(1, 19) * 5),
                1 => Some(100),
                _ => g.chance(0.5).then_some(0),
            };
            put_opt(&mut row, "closeprobability", probability);
            let day = |seconds: i64| seconds - seconds.rem_euclid(86_400);
            let close = day(g.between(created + 86_400 * 14, created + 86_400 * 400));
            put(
                &mut row,
                "estimatedclosedate",
                iso_from_unix(close.min(horizon)),
            );
            if state != 0 {
                let actual =
                    day(g.between(created + 86_400 * 7, created_high.max(created + 86_400 * 8)));
                put(&mut row, "actualclosedate", iso_from_unix(actual));
            }
            if state == 1 {
                let won = estimated
                    .map(|e| e * (0.8 + g.rng.f64() * 0.4))
                    .unwrap_or_else(|| g.between(5_000, 100_000) as f64);
                put_money(&mut row, "actualvalue", Some(won), currency);
            }
            let rating = g.chance(0.9).then(|| g.between(1, 3));
            put_opt(&mut row, "opportunityratingcode", rating);
            put_currency(&mut row, currency);
            put_common(&mut row, g, users, state, status);
            put(&mut row, "createdon", iso_from_unix(created));
            row
        })
        .collect()
}

fn leads(g: &mut Gen, users: &[SystemUser], currencies: &[Currency]) -> Vec<Row> {
    (0..LEADS)
        .map(|i| {
            let mut row = Row::new();
            let (first, last) = g.person();
            put(&mut row, "leadid", g.guid());
            put(
                &mut row,
                "subject",
                format!("Interested in {}", g.pick(PRODUCTS)),
            );
            put(&mut row, "fullname", format!("{first} {last}"));
            put(&mut row, "firstname", first);
            put(&mut row, "lastname", last);
            let company = g
                .chance(0.9)
                .then(|| format!("{} {}", g.pick(COMPANY_STEMS), g.pick(COMPANY_SUFFIXES)));
            put_opt(&mut row, "companyname", company);
            let currency = pick_currency(g, currencies, 0.2);
            let amount = g.chance(0.7).then(|| (g.between(10, 2_000) * 100) as f64);
            put_money(&mut row, "estimatedamount", amount, currency);
            let quality = match g.rng.u32(0..100) {
                0..10 => 1,
                10..45 => 2,
                _ => 3,
            };
            put(&mut row, "leadqualitycode", quality);
            let source = g.chance(0.85).then(|| g.pick(LEAD_SOURCES).0);
            put_opt(&mut row, "leadsourcecode", source);
            put_currency(&mut row, currency);
            // Every eighth lead is closed, so 52,500 stay open: over the 50,000
            // aggregate limit whatever the generator draws.
            let (state, status) = if i % 8 == 7 {
                if g.chance(0.6) {
                    (1, 3)
                } else {
                    (2, g.between(4, 7))
                }
            } else {
                (0, if g.chance(0.7) { 1 } else { 2 })
            };
            put_common(&mut row, g, users, state, status);
            if LEADS_WITHOUT_CREATEDON.contains(&i) {
                // Removed after generation, so the random stream is unchanged.
                row.remove("createdon");
            }
            row
        })
        .collect()
}

/// Rows of the bench table: `new_sequence` 0..N-1, `createdon` spread evenly over
/// 2022-01-01..2026-01-01, about 5% of `new_amount` null, every row active.
pub fn bench_rows() -> Vec<Row> {
    let mut rng = fastrand::Rng::with_seed(BENCH_SEED);
    let start = days_from_civil(2022, 1, 1) * 86_400;
    let end = days_from_civil(2026, 1, 1) * 86_400;
    let step = (end - start) / BENCH_ROWS as i64;
    (0..BENCH_ROWS)
        .map(|i| {
            let mut row = Row::new();
            put(
                &mut row,
                "new_benchrecordid",
                format_guid(
                    0xbe4c_0000_0000_4000 | ((rng.u64(..) >> 32) << 16),
                    i as u64,
                ),
            );
            put(&mut row, "new_name", format!("Bench record {i:06}"));
            if rng.f64() >= 0.05 {
                put(&mut row, "new_amount", round_to(rng.f64() * 10_000.0, 2));
            }
            put(&mut row, "new_quantity", rng.i64(1..=1_000));
            put(&mut row, "new_sequence", i as i64);
            put(
                &mut row,
                "createdon",
                iso_from_unix(start + i as i64 * step),
            );
            put(&mut row, "statecode", 0);
            row
        })
        .collect()
}

fn incidents(g: &mut Gen, users: &[SystemUser], accounts: &[Row]) -> Vec<Row> {
    (0..INCIDENTS)
        .map(|i| {
            let mut row = Row::new();
            put(&mut row, "incidentid", g.guid());
            put(&mut row, "title", g.pick(CASE_TITLES).to_string());
            let code: String = (0..4).map(|_| char::from(b'A' + g.rng.u8(0..26))).collect();
            put(
                &mut row,
                "ticketnumber",
                format!("CAS-{:05}-{code}", 1_000 + i),
            );
            let priority = match g.rng.u32(0..100) {
                0..20 => 1,
                20..75 => 2,
                _ => 3,
            };
            put(&mut row, "prioritycode", priority);
            put(&mut row, "caseorigincode", g.between(1, 3));
            let customer = id_of(g.pick(accounts), "accountid");
            put(&mut row, "customerid", customer);
            let roll = g.rng.u32(0..100);
            let (state, status) = match roll {
                0..50 => (0, g.between(1, 4)),
                50..90 => (1, 5),
                _ => (2, 6),
            };
            put_common(&mut row, g, users, state, status);
            row
        })
        .collect()
}
