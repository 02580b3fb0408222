//! System and personal views of the business tables, in the documented
//! fetchxml/layoutxml form.

use super::{Currency, View, ViewKind, guid_from_name};
use crate::format::{days_from_civil, iso_from_unix};

struct Spec {
    entity: &'static str,
    object_type_code: i64,
    name: &'static str,
    kind: ViewKind,
    querytype: i64,
    statecode: i64,
    isdefault: bool,
    /// The children of `<entity>`.
    body: &'static str,
    /// Layout cells (`<alias>.<attribute>` for joined columns).
    cells: &'static [&'static str],
    /// `distinct` on `<fetch>`.
    distinct: bool,
}

impl Spec {
    const fn distinct(self) -> Spec {
        Spec {
            distinct: true,
            ..self
        }
    }
}

#[allow(clippy::too_many_arguments)]
const fn spec(
    entity: &'static str,
    object_type_code: i64,
    name: &'static str,
    kind: ViewKind,
    querytype: i64,
    statecode: i64,
    isdefault: bool,
    body: &'static str,
    cells: &'static [&'static str],
) -> Spec {
    Spec {
        entity,
        object_type_code,
        name,
        kind,
        querytype,
        statecode,
        isdefault,
        body,
        cells,
        distinct: false,
    }
}

use ViewKind::{Personal, System};

const SPECS: &[Spec] = &[
    // account
    spec(
        "account",
        1,
        "Active Accounts",
        System,
        0,
        0,
        true,
        "<attribute name='name' />
    <attribute name='accountnumber' />
    <attribute name='revenue' />
    <attribute name='numberofemployees' />
    <attribute name='industrycode' />
    <attribute name='ownerid' />
    <attribute name='createdon' />
    <attribute name='accountid' />
    <order attribute='name' descending='false' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
    </filter>",
        &[
            "name",
            "accountnumber",
            "revenue",
            "numberofemployees",
            "industrycode",
            "ownerid",
            "createdon",
        ],
    ),
    spec(
        "account",
        1,
        "Inactive Accounts",
        System,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='accountnumber' />
    <attribute name='revenue' />
    <attribute name='createdon' />
    <attribute name='accountid' />
    <order attribute='name' descending='false' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='1' />
    </filter>",
        &["name", "accountnumber", "revenue", "createdon"],
    ),
    spec(
        "account",
        1,
        "Accounts with Revenue",
        System,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='revenue' />
    <attribute name='numberofemployees' />
    <attribute name='accountid' />
    <order attribute='revenue' descending='true' />
    <filter type='and'>
      <condition attribute='revenue' operator='not-null' />
    </filter>",
        &["name", "revenue", "numberofemployees"],
    ),
    spec(
        "account",
        1,
        "Accounts with Open Opportunities",
        System,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='accountid' />
    <order attribute='name' descending='false' />
    <link-entity name='opportunity' from='parentaccountid' to='accountid' link-type='inner' alias='openopp'>
      <attribute name='name' />
      <attribute name='estimatedvalue' />
      <filter type='and'>
        <condition attribute='statecode' operator='eq' value='0' />
      </filter>
    </link-entity>",
        &["name", "openopp.name", "openopp.estimatedvalue"],
    ),
    // Advanced-Find style: the link only filters (no columns), and distinct keeps
    // each account once however many open deals it has.
    spec(
        "account",
        1,
        "Accounts with Open Deals",
        System,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='revenue' />
    <attribute name='numberofemployees' />
    <attribute name='accountid' />
    <order attribute='name' descending='false' />
    <link-entity name='opportunity' from='parentaccountid' to='accountid' link-type='inner' alias='opendeal'>
      <filter type='and'>
        <condition attribute='statecode' operator='eq' value='0' />
      </filter>
    </link-entity>",
        &["name", "revenue", "numberofemployees"],
    )
    .distinct(),
    spec(
        "account",
        1,
        "Quick Find Active Accounts",
        System,
        4,
        0,
        false,
        "<attribute name='name' />
    <attribute name='accountnumber' />
    <attribute name='accountid' />
    <order attribute='name' descending='false' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
    </filter>
    <filter type='or' isquickfindfields='1'>
      <condition attribute='name' operator='like' value='{0}' />
      <condition attribute='accountnumber' operator='like' value='{0}' />
    </filter>",
        &["name", "accountnumber"],
    ),
    spec(
        "account",
        1,
        "Accounts Overview (Retired)",
        System,
        0,
        1,
        false,
        "<attribute name='name' />
    <attribute name='accountid' />
    <order attribute='name' descending='false' />",
        &["name"],
    ),
    spec(
        "account",
        1,
        "My Accounts",
        Personal,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='revenue' />
    <attribute name='accountid' />
    <order attribute='name' descending='false' />
    <filter type='and'>
      <condition attribute='ownerid' operator='eq-userid' />
      <condition attribute='statecode' operator='eq' value='0' />
    </filter>",
        &["name", "revenue"],
    ),
    // contact
    spec(
        "contact",
        2,
        "Active Contacts",
        System,
        0,
        0,
        true,
        "<attribute name='fullname' />
    <attribute name='emailaddress1' />
    <attribute name='jobtitle' />
    <attribute name='annualincome' />
    <attribute name='parentcustomerid' />
    <attribute name='contactid' />
    <order attribute='fullname' descending='false' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
    </filter>
    <link-entity name='account' from='accountid' to='parentcustomerid' link-type='outer' alias='parentaccount' visible='false'>
      <attribute name='name' />
    </link-entity>",
        &[
            "fullname",
            "parentaccount.name",
            "emailaddress1",
            "jobtitle",
            "annualincome",
        ],
    ),
    spec(
        "contact",
        2,
        "Contacts with Email",
        System,
        0,
        0,
        false,
        "<attribute name='fullname' />
    <attribute name='emailaddress1' />
    <attribute name='contactid' />
    <order attribute='fullname' descending='false' />
    <filter type='and'>
      <condition attribute='emailaddress1' operator='not-null' />
    </filter>",
        &["fullname", "emailaddress1"],
    ),
    spec(
        "contact",
        2,
        "Inactive Contacts",
        System,
        0,
        0,
        false,
        "<attribute name='fullname' />
    <attribute name='jobtitle' />
    <attribute name='createdon' />
    <attribute name='contactid' />
    <order attribute='fullname' descending='false' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='1' />
    </filter>",
        &["fullname", "jobtitle", "createdon"],
    ),
    spec(
        "contact",
        2,
        "Contact Lookup View",
        System,
        64,
        0,
        false,
        "<attribute name='fullname' />
    <attribute name='contactid' />
    <order attribute='fullname' descending='false' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
    </filter>",
        &["fullname"],
    ),
    spec(
        "contact",
        2,
        "Contact Directory (Retired)",
        System,
        0,
        1,
        false,
        "<attribute name='fullname' />
    <attribute name='contactid' />",
        &["fullname"],
    ),
    spec(
        "contact",
        2,
        "Contacts at Large Accounts",
        Personal,
        0,
        0,
        false,
        "<attribute name='fullname' />
    <attribute name='contactid' />
    <order attribute='fullname' descending='false' />
    <link-entity name='account' from='accountid' to='parentcustomerid' link-type='inner' alias='bigaccount'>
      <attribute name='name' />
      <attribute name='numberofemployees' />
      <filter type='and'>
        <condition attribute='numberofemployees' operator='ge' value='5000' />
      </filter>
    </link-entity>",
        &["fullname", "bigaccount.name", "bigaccount.numberofemployees"],
    ),
    // opportunity
    spec(
        "opportunity",
        3,
        "Open Opportunities",
        System,
        0,
        0,
        true,
        "<attribute name='name' />
    <attribute name='estimatedvalue' />
    <attribute name='closeprobability' />
    <attribute name='estimatedclosedate' />
    <attribute name='customerid' />
    <attribute name='opportunityid' />
    <order attribute='estimatedclosedate' descending='false' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
    </filter>
    <link-entity name='account' from='accountid' to='customerid' link-type='outer' alias='customeraccount' visible='false'>
      <attribute name='numberofemployees' />
    </link-entity>",
        &[
            "name",
            "estimatedvalue",
            "closeprobability",
            "estimatedclosedate",
            "customeraccount.numberofemployees",
        ],
    ),
    spec(
        "opportunity",
        3,
        "Won Opportunities",
        System,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='actualvalue' />
    <attribute name='actualclosedate' />
    <attribute name='estimatedvalue' />
    <attribute name='opportunityid' />
    <order attribute='actualclosedate' descending='true' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='1' />
    </filter>",
        &["name", "actualvalue", "actualclosedate", "estimatedvalue"],
    ),
    spec(
        "opportunity",
        3,
        "Lost Opportunities",
        System,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='estimatedvalue' />
    <attribute name='actualclosedate' />
    <attribute name='opportunityid' />
    <order attribute='actualclosedate' descending='true' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='2' />
    </filter>",
        &["name", "estimatedvalue", "actualclosedate"],
    ),
    spec(
        "opportunity",
        3,
        "Pipeline 50%_Plus",
        System,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='estimatedvalue' />
    <attribute name='closeprobability' />
    <attribute name='opportunityid' />
    <order attribute='closeprobability' descending='true' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
      <condition attribute='closeprobability' operator='ge' value='50' />
    </filter>",
        &["name", "estimatedvalue", "closeprobability"],
    ),
    spec(
        "opportunity",
        3,
        "Pipeline 50 Plus",
        System,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='estimatedvalue' />
    <attribute name='closeprobability' />
    <attribute name='opportunityid' />
    <order attribute='estimatedvalue' descending='true' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
      <condition attribute='estimatedvalue_base' operator='ge' value='50000' />
    </filter>",
        &["name", "estimatedvalue", "closeprobability"],
    ),
    spec(
        "opportunity",
        3,
        "Opportunity Lookup View",
        System,
        64,
        0,
        false,
        "<attribute name='name' />
    <attribute name='opportunityid' />
    <order attribute='name' descending='false' />",
        &["name"],
    ),
    spec(
        "opportunity",
        3,
        "Stalled Opportunities (Retired)",
        System,
        0,
        1,
        false,
        "<attribute name='name' />
    <attribute name='opportunityid' />
    <filter type='and'>
      <condition attribute='statuscode' operator='eq' value='2' />
    </filter>",
        &["name"],
    ),
    spec(
        "opportunity",
        3,
        "My Big Deals",
        Personal,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='estimatedvalue' />
    <attribute name='customerid' />
    <attribute name='opportunityid' />
    <order attribute='estimatedvalue' descending='true' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
      <condition attribute='estimatedvalue_base' operator='ge' value='100000' />
    </filter>",
        &["name", "estimatedvalue", "customerid"],
    ),
    // A lookup condition as the view designer saves it: the id upper-case in
    // braces, with uiname/uitype. `{EUR}` is replaced by the Euro's id.
    spec(
        "opportunity",
        3,
        "Open Deals in Euro",
        System,
        0,
        0,
        false,
        "<attribute name='name' />
    <attribute name='estimatedvalue' />
    <attribute name='closeprobability' />
    <attribute name='opportunityid' />
    <order attribute='estimatedvalue' descending='true' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
      <condition attribute='transactioncurrencyid' operator='eq' uiname='Euro' uitype='transactioncurrency' value='{EUR}' />
    </filter>",
        &["name", "estimatedvalue", "closeprobability"],
    ),
    // lead
    spec(
        "lead",
        4,
        "Open Leads",
        System,
        0,
        0,
        true,
        "<attribute name='fullname' />
    <attribute name='subject' />
    <attribute name='companyname' />
    <attribute name='estimatedamount' />
    <attribute name='leadqualitycode' />
    <attribute name='createdon' />
    <attribute name='leadid' />
    <order attribute='createdon' descending='true' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
    </filter>",
        &[
            "fullname",
            "subject",
            "companyname",
            "estimatedamount",
            "leadqualitycode",
            "createdon",
        ],
    ),
    spec(
        "lead",
        4,
        "Hot Leads",
        System,
        0,
        0,
        false,
        "<attribute name='fullname' />
    <attribute name='subject' />
    <attribute name='companyname' />
    <attribute name='estimatedamount' />
    <attribute name='createdon' />
    <attribute name='leadid' />
    <order attribute='createdon' descending='true' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
      <condition attribute='leadqualitycode' operator='eq' value='1' />
    </filter>",
        &[
            "fullname",
            "subject",
            "companyname",
            "estimatedamount",
            "createdon",
        ],
    ),
    spec(
        "lead",
        4,
        "Qualified Leads",
        System,
        0,
        0,
        false,
        "<attribute name='fullname' />
    <attribute name='companyname' />
    <attribute name='estimatedamount' />
    <attribute name='leadid' />
    <order attribute='fullname' descending='false' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='1' />
    </filter>",
        &["fullname", "companyname", "estimatedamount"],
    ),
    spec(
        "lead",
        4,
        "Quick Find Open Leads",
        System,
        4,
        0,
        false,
        "<attribute name='fullname' />
    <attribute name='leadid' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
    </filter>
    <filter type='or' isquickfindfields='1'>
      <condition attribute='fullname' operator='like' value='{0}' />
    </filter>",
        &["fullname"],
    ),
    spec(
        "lead",
        4,
        "Lead Backlog (Retired)",
        System,
        0,
        1,
        false,
        "<attribute name='fullname' />
    <attribute name='leadid' />",
        &["fullname"],
    ),
    spec(
        "lead",
        4,
        "My Warm Leads",
        Personal,
        0,
        0,
        false,
        "<attribute name='fullname' />
    <attribute name='estimatedamount' />
    <attribute name='leadid' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
      <condition attribute='leadqualitycode' operator='eq' value='2' />
    </filter>",
        &["fullname", "estimatedamount"],
    ),
    // incident
    spec(
        "incident",
        112,
        "Active Cases",
        System,
        0,
        0,
        true,
        "<attribute name='title' />
    <attribute name='ticketnumber' />
    <attribute name='prioritycode' />
    <attribute name='createdon' />
    <attribute name='customerid' />
    <attribute name='incidentid' />
    <order attribute='createdon' descending='true' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
    </filter>
    <link-entity name='account' from='accountid' to='customerid' link-type='outer' alias='caseaccount' visible='false'>
      <attribute name='name' />
    </link-entity>",
        &[
            "title",
            "ticketnumber",
            "prioritycode",
            "caseaccount.name",
            "createdon",
        ],
    ),
    spec(
        "incident",
        112,
        "High Priority Cases",
        System,
        0,
        0,
        false,
        "<attribute name='title' />
    <attribute name='ticketnumber' />
    <attribute name='createdon' />
    <attribute name='incidentid' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
      <condition attribute='prioritycode' operator='eq' value='1' />
    </filter>",
        &["title", "ticketnumber", "createdon"],
    ),
    spec(
        "incident",
        112,
        "Resolved Cases",
        System,
        0,
        0,
        false,
        "<attribute name='title' />
    <attribute name='ticketnumber' />
    <attribute name='prioritycode' />
    <attribute name='incidentid' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='1' />
    </filter>",
        &["title", "ticketnumber", "prioritycode"],
    ),
    spec(
        "incident",
        112,
        "Case Advanced Find View",
        System,
        1,
        0,
        false,
        "<attribute name='title' />
    <attribute name='incidentid' />",
        &["title"],
    ),
    spec(
        "incident",
        112,
        "Escalated Cases (Retired)",
        System,
        0,
        1,
        false,
        "<attribute name='title' />
    <attribute name='incidentid' />
    <filter type='and'>
      <condition attribute='prioritycode' operator='eq' value='1' />
    </filter>",
        &["title"],
    ),
    spec(
        "incident",
        112,
        "Cases Opened in 2025",
        Personal,
        0,
        0,
        false,
        "<attribute name='title' />
    <attribute name='prioritycode' />
    <attribute name='incidentid' />
    <filter type='and'>
      <condition attribute='createdon' operator='on-or-after' value='2025-01-01' />
    </filter>",
        &["title", "prioritycode"],
    ),
    // new_benchrecord: the bench table for cost measurements (200,000 rows).
    spec(
        "new_benchrecord",
        10_001,
        "Bench 1k",
        System,
        0,
        0,
        false,
        "<attribute name='new_name' />
    <attribute name='new_amount' />
    <attribute name='new_quantity' />
    <attribute name='createdon' />
    <attribute name='new_benchrecordid' />
    <order attribute='new_name' descending='false' />
    <filter type='and'>
      <condition attribute='new_sequence' operator='lt' value='1000' />
    </filter>",
        BENCH_CELLS,
    ),
    spec(
        "new_benchrecord",
        10_001,
        "Bench 50k",
        System,
        0,
        0,
        false,
        "<attribute name='new_name' />
    <attribute name='new_amount' />
    <attribute name='new_quantity' />
    <attribute name='createdon' />
    <attribute name='new_benchrecordid' />
    <order attribute='new_name' descending='false' />
    <filter type='and'>
      <condition attribute='new_sequence' operator='lt' value='50000' />
    </filter>",
        BENCH_CELLS,
    ),
    spec(
        "new_benchrecord",
        10_001,
        "Bench 200k",
        System,
        0,
        0,
        false,
        "<attribute name='new_name' />
    <attribute name='new_amount' />
    <attribute name='new_quantity' />
    <attribute name='createdon' />
    <attribute name='new_benchrecordid' />
    <order attribute='new_name' descending='false' />
    <filter type='and'>
      <condition attribute='statecode' operator='eq' value='0' />
    </filter>",
        BENCH_CELLS,
    ),
];

const BENCH_CELLS: &[&str] = &["new_name", "new_amount", "new_quantity", "createdon"];

fn layout(spec: &Spec) -> String {
    let mut xml = format!(
        "<grid name='resultset' object='{}' jump='{}' select='1' icon='1' preview='1'>\n  <row name='result' id='{}id'>\n",
        spec.object_type_code,
        spec.cells.first().copied().unwrap_or("name"),
        spec.entity
    );
    for cell in spec.cells {
        let sorting = if cell.contains('.') {
            " disableSorting='1'"
        } else {
            ""
        };
        xml.push_str(&format!(
            "    <cell name='{cell}' width='150'{sorting} />\n"
        ));
    }
    xml.push_str("  </row>\n</grid>");
    xml
}

fn fetch(spec: &Spec, currencies: &[Currency]) -> String {
    let mut body = spec.body.to_string();
    for currency in currencies {
        let placeholder = format!("{{{}}}", currency.iso_code);
        if body.contains(&placeholder) {
            body = body.replace(
                &placeholder,
                &format!("{{{}}}", currency.id.to_ascii_uppercase()),
            );
        }
    }
    format!(
        "<fetch version='1.0' output-format='xml-platform' mapping='logical' distinct='{}'>\n  <entity name='{}'>\n    {}\n  </entity>\n</fetch>",
        spec.distinct, spec.entity, body
    )
}

/// A deterministic last-modified time per view: spread over 2024-2025, at
/// whole minutes during office hours.
fn modifiedon(index: usize) -> String {
    let index = index as i64;
    let day = days_from_civil(2024, 1, 8) + index * 17 % 700;
    let minute = 8 * 60 + index * 37 % (9 * 60);
    iso_from_unix(day * 86_400 + minute * 60)
}

pub fn views(currencies: &[Currency]) -> Vec<View> {
    SPECS
        .iter()
        .enumerate()
        .map(|(index, spec)| View {
            id: guid_from_name(spec.kind.logical_name(), spec.name),
            kind: spec.kind,
            name: spec.name.to_string(),
            returnedtypecode: spec.entity.to_string(),
            querytype: spec.querytype,
            statecode: spec.statecode,
            isdefault: spec.isdefault,
            fetchxml: fetch(spec, currencies),
            layoutxml: layout(spec),
            description: String::new(),
            modifiedon: modifiedon(index),
        })
        .collect()
}
