//! The command line of `goals-host kr ...`: its subcommands and arguments.

use crate::cli::{AggregationArg, CurrencyArg};
use clap::{Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum UnitArg {
    /// A plain number, e.g. a count of leads
    Number,
    /// A percentage
    Percent,
    /// An amount of money, in the currency of --currency-code
    Currency,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DirectionArg {
    /// Progress as the value rises from start to target
    Increase,
    /// Progress as the value falls from start to target
    Decrease,
}

#[derive(Debug, Subcommand)]
pub enum KrCommand {
    /// Create a Key Result in the organization (--org)
    #[command(after_long_help = "Examples:
  goals-host kr create --title 'Work hot leads' --owner ana --start 0 --target 50
  goals-host --org Sales kr create --title 'Open pipeline' --owner ana \\
    --unit currency --currency-code USD --start 0 --target 5000000
  goals-host kr create --title 'Open cases' --owner ben --start 120 --target 30 \\
    --direction decrease
  goals-host kr create --title 'Q1 pipeline' --owner ana --unit currency --currency-code USD \\
    --start 0 --target 2000000 --period-start 2024-01-01 --period-end 2024-03-31")]
    Create(ItemFields),
    #[command(flatten)]
    Item(ItemCommand),
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a Project in the organization (--org), under a Key Result if given
    #[command(after_long_help = "Examples:
  goals-host project create --title 'Partner campaign' --owner ana --start 0 --target 200 \\
    --parent 'Work hot leads' --due-date 2027-03-31
  goals-host --org Sales project create --title 'Website relaunch' --owner ben \\
    --unit percent --start 0 --target 100")]
    Create {
        #[command(flatten)]
        fields: ItemFields,
        /// The Key Result it serves: its id or exact title, in the same organization
        #[arg(long, value_name = "KEY_RESULT")]
        parent: Option<String>,
        /// When it is due, as YYYY-MM-DD
        #[arg(long, value_name = "DATE")]
        due_date: Option<String>,
    },
    #[command(flatten)]
    Item(ItemCommand),
}

/// What a Key Result or a Project is created with.
#[derive(Debug, clap::Args)]
pub struct ItemFields {
    /// Title: 1 to 200 characters, unique among its kind in the organization
    #[arg(long)]
    pub title: String,
    /// Who owns it (any name, for the record)
    #[arg(long)]
    pub owner: String,
    /// What the value is: a plain number, a percentage or an amount of money
    #[arg(long, value_enum, default_value_t = UnitArg::Number)]
    pub unit: UnitArg,
    /// ISO code of a currency value, e.g. EUR
    #[arg(long)]
    pub currency_code: Option<String>,
    /// Value at the start: 0% progress
    #[arg(long, allow_negative_numbers = true)]
    pub start: f64,
    /// Value to reach: 100% progress (not equal to --start)
    #[arg(long, allow_negative_numbers = true)]
    pub target: f64,
    /// Whether progress means the value going up or down from --start
    #[arg(long, value_enum, default_value_t = DirectionArg::Increase)]
    pub direction: DirectionArg,
    /// First day of its period, YYYY-MM-DD: a link with --period-column
    /// counts only the rows dated from that day on
    #[arg(long, value_name = "DATE")]
    pub period_start: Option<String>,
    /// Last day of its period, YYYY-MM-DD, included
    #[arg(long, value_name = "DATE")]
    pub period_end: Option<String>,
}

/// The commands Key Results and Projects share: `kr X` and `project X`.
#[derive(Debug, Subcommand)]
pub enum ItemCommand {
    /// List them (of --org when given)
    List,
    /// Link to a metric: with every flag, or as a wizard in a terminal.
    /// With only --connection on a linked one, move it to that connection.
    #[command(after_long_help = "Examples:
  goals-host kr link 1 --connection Contoso --app 'Sales Hub' --entity opportunity \\
    --view 'Open Opportunities' --column estimatedvalue --aggregation sum --interval 1h
  goals-host kr link 'Work hot leads' --connection Contoso --app 'Sales Hub' \\
    --entity lead --view 'Hot Leads' --column fullname --aggregation count
  goals-host project link 'Partner campaign' --connection Contoso --app 'Sales Hub' \\
    --entity lead --view 'Hot Leads' --column fullname --aggregation count
  goals-host kr link 1                                      # the wizard asks each step
  goals-host kr link 1 --connection Contoso --interactive   # the wizard, from that connection
  goals-host kr link 1 --connection Sandbox                 # move a linked Key Result there
  goals-host kr link 'Q1 pipeline' --connection Contoso --app 'Sales Hub' \\
    --entity opportunity --view 'Open Opportunities' --column estimatedvalue \\
    --aggregation sum --period-column estimatedclosedate     # only deals closing in its period
  goals-host kr link 'Pipeline on hold' --connection Contoso --app 'Sales Hub' \\
    --entity opportunity --view 'Open Opportunities' --chart 'Pipeline by Status Reason' \\
    --measure sum_estimatedvalue --category 'On Hold'        # a chart's measure, one category")]
    Link(Box<LinkArgs>),
    /// Remove the link; the value stays
    #[command(after_long_help = "Examples:
  goals-host kr unlink 1
  goals-host project unlink 'Partner campaign'")]
    Unlink {
        /// Its id or exact title
        #[arg(value_name = "ID_OR_TITLE")]
        kr: String,
    },
    /// Stop scheduled syncs of the link
    #[command(after_long_help = "Examples:
  goals-host kr pause 'Work hot leads'
  goals-host project pause 7")]
    Pause {
        /// Its id or exact title
        #[arg(value_name = "ID_OR_TITLE")]
        kr: String,
    },
    /// Resume scheduled syncs (the next runs at once); a broken link is checked
    /// again first and resumes only if its view and column are there
    #[command(after_long_help = "Examples:
  goals-host kr resume 'Work hot leads'
  goals-host project resume 7")]
    Resume {
        /// Its id or exact title
        #[arg(value_name = "ID_OR_TITLE")]
        kr: String,
    },
    /// Record a value by hand; the next sync replaces it unless the link is paused
    #[command(after_long_help = "Examples:
  goals-host kr pause 1
  goals-host kr checkin 1 42
  goals-host project checkin 'Website relaunch' 60")]
    Checkin {
        /// Its id or exact title
        #[arg(value_name = "ID_OR_TITLE")]
        kr: String,
        /// The value, in its unit (e.g. 42, or 1250000 for money)
        #[arg(allow_negative_numbers = true)]
        value: f64,
    },
    /// Sync now, through the same path as the scheduler; inside a throttle
    /// window Dataverse asked for, it says until when and sends nothing
    #[command(after_long_help = "Examples:
  goals-host kr sync 1
  goals-host --org Sales kr sync 'Open pipeline' --json
  goals-host project sync 'Partner campaign'")]
    Sync {
        /// Its id or exact title
        #[arg(value_name = "ID_OR_TITLE")]
        kr: String,
        /// Send even while Dataverse's Retry-After asks to wait
        #[arg(long)]
        force: bool,
    },
    /// What the integration details popover shows
    #[command(after_long_help = "Examples:
  goals-host kr show 1
  goals-host kr show 'Work hot leads' --json
  goals-host project show 'Partner campaign'")]
    Show {
        /// Its id or exact title
        #[arg(value_name = "ID_OR_TITLE")]
        kr: String,
    },
    /// The sync runs, newest first
    #[command(after_long_help = "Examples:
  goals-host kr history 1
  goals-host kr history 'Work hot leads' --limit 5 --json
  goals-host project history 7")]
    History {
        /// Its id or exact title
        #[arg(value_name = "ID_OR_TITLE")]
        kr: String,
        /// How many runs to show, newest first
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    /// Its id or exact title
    #[arg(value_name = "ID_OR_TITLE")]
    pub kr: String,
    /// Connection: its exact name, in the organization
    #[arg(long)]
    pub connection: Option<String>,
    /// App: its id, unique name or display name (any case), as `apps` lists
    #[arg(long)]
    pub app: Option<String>,
    /// Table: its logical name (e.g. opportunity) or display name, as `entities` lists
    #[arg(long)]
    pub entity: Option<String>,
    /// View: its id or name (any case), as `views` lists
    #[arg(long)]
    pub view: Option<String>,
    /// Column: its name as `columns` lists (e.g. estimatedvalue, or alias.attribute for a joined table)
    #[arg(long)]
    pub column: Option<String>,
    /// How the column's values are reduced to one number; `columns` lists those it allows
    #[arg(long, value_enum)]
    pub aggregation: Option<AggregationArg>,
    /// A chart of the table (its id or name, as `charts` lists): its measure
    /// over the view's rows, instead of --column and --aggregation
    #[arg(long, conflicts_with_all = ["column", "aggregation"])]
    pub chart: Option<String>,
    /// The chart's measure (its alias, as `charts` lists), when it has several
    #[arg(long, requires = "chart", value_name = "ALIAS")]
    pub measure: Option<String>,
    /// Only the rows of one of the chart's categories: a choice's label (Won),
    /// or a month 2024-03, a quarter 2024-Q1, a year 2024, a day 2024-03-15
    #[arg(long, requires = "chart", value_name = "VALUE")]
    pub category: Option<String>,
    /// Currency of money results (a column that is not money ignores it)
    #[arg(long, value_enum, default_value_t = CurrencyArg::Base)]
    pub currency: CurrencyArg,
    /// Time between syncs: 1h, 30m, 90s or plain seconds, from 1 s to 31 days
    /// [default: the integration's, hourly]
    #[arg(long, value_parser = parse_interval, value_name = "DURATION")]
    pub interval: Option<i64>,
    /// A date column of the view's table (e.g. estimatedclosedate): only rows
    /// dated within the item's period count (--period-start/--period-end)
    #[arg(long, value_name = "COLUMN")]
    pub period_column: Option<String>,
    /// The date column a history is back-filled from, when the item has a
    /// period start: points from that day to yesterday
    #[arg(long, value_name = "COLUMN", default_value = crate::goals::backfill::DEFAULT_COLUMN)]
    pub backfill_column: String,
    /// Do not back-fill the history
    #[arg(long)]
    pub no_backfill: bool,
    /// Run the wizard even when flags are given
    #[arg(long)]
    pub interactive: bool,
}

/// `--interval`: a humantime duration (`1h`, `30m`, `1h 30m`) or plain seconds,
/// within 1 s and 31 days.
pub fn parse_interval(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let seconds = match text.parse::<i64>() {
        Ok(seconds) => seconds,
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("'{text}' is not a duration ({e}); write e.g. 1h, 30m or 3600"))
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))?,
    };
    if !(1..=crate::goals::keyresults::MAX_INTERVAL_SECONDS).contains(&seconds) {
        return Err(format!(
            "the interval must be between 1 second and 31 days, not {text}"
        ));
    }
    Ok(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_as_people_write_them() {
        assert_eq!(parse_interval("1h"), Ok(3600));
        assert_eq!(parse_interval("30m"), Ok(1800));
        assert_eq!(parse_interval("3600s"), Ok(3600));
        assert_eq!(parse_interval("90"), Ok(90));
        assert_eq!(parse_interval("1h 30m"), Ok(5400));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("32days").is_err());
        assert!(parse_interval("9223372036854775807").is_err());
        assert!(
            parse_interval("soon")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
