//! Split plans: parts stay contiguous and ordered however they are split, and a
//! stored plan of another shape is only ever refused, never a panic.

use crate::check;
use crate::inputs;
use dynamics365_plugin::split::{Part, SplitPlan};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseResult;

/// Mostly the few pieces the plugin asks for, some absurd counts.
fn pieces() -> BoxedStrategy<u32> {
    prop_oneof![6 => 0u32..10, 2 => 10u32..200, 1 => 200u32..5000, 1 => any::<u32>()].boxed()
}

#[derive(Debug, Clone)]
enum Target {
    /// One of the plan's parts (or one just past the end).
    Part(Index),
    Raw(usize),
}

fn target() -> BoxedStrategy<Target> {
    prop_oneof![
        8 => any::<Index>().prop_map(Target::Part),
        1 => any::<usize>().prop_map(Target::Raw),
    ]
    .boxed()
}

fn contiguous(parts: &[Part]) -> TestCaseResult {
    prop_assert!(!parts.is_empty());
    prop_assert_eq!(&parts[0].from, &None);
    prop_assert_eq!(&parts[parts.len() - 1].to, &None);
    for pair in parts.windows(2) {
        prop_assert_eq!(&pair[0].to, &pair[1].from);
    }
    Ok(())
}

fn split_repeatedly(plan: &mut SplitPlan, targets: &[Target], ordered: bool) -> TestCaseResult {
    for target in targets {
        let index = match target {
            Target::Part(at) => at.index(plan.len() + 1),
            Target::Raw(index) => *index,
        };
        let before = plan.clone();
        if plan.split(index) {
            prop_assert_eq!(plan.len(), before.len() + 1);
        } else {
            prop_assert_eq!(&*plan, &before, "a refused split changes nothing");
        }
        let parts = plan.parts();
        prop_assert_eq!(parts.len(), plan.len());
        prop_assert!(!plan.is_empty());
        contiguous(&parts)?;
        if ordered {
            // Cuts are whole-second RFC 3339 in one format: text order is time order.
            for part in &parts {
                if let (Some(from), Some(to)) = (&part.from, &part.to) {
                    prop_assert!(from < to, "part {from} .. {to} is empty or reversed");
                }
            }
        }
    }
    Ok(())
}

#[test]
fn split_plans_stay_contiguous() {
    check(
        "split::SplitPlan",
        2000,
        (
            inputs::timestamp(),
            inputs::timestamp(),
            pieces(),
            prop::collection::vec(target(), 0..40),
        ),
        |(first, last, pieces, targets)| {
            let Ok(mut plan) = SplitPlan::new(&first, &last, pieces) else {
                return Ok(());
            };
            prop_assert!(plan.len() <= pieces.max(1) as usize);
            contiguous(&plan.parts())?;
            split_repeatedly(&mut plan, &targets, true)?;
            // A plan survives the cache.
            let stored =
                serde_json::to_string(&plan).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let restored: SplitPlan =
                serde_json::from_str(&stored).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(restored, plan);
            Ok(())
        },
    );
}

/// Plans read back from storage may come from another version of the plugin, or
/// be damaged: unordered cuts, bounds that are not timestamps.
#[test]
fn stored_plans_of_any_shape_split_safely() {
    let plan = (
        inputs::timestamp(),
        inputs::timestamp(),
        prop::collection::vec(inputs::timestamp(), 0..6),
    )
        .prop_map(|(first, last, cuts)| {
            serde_json::json!({"first": first, "last": last, "cuts": cuts}).to_string()
        });
    let text = prop_oneof![
        6 => plan.clone(),
        2 => (plan, inputs::mutations()).prop_map(|(text, m)| inputs::mutate(&text, &m)),
        1 => inputs::json_text(),
    ];
    check(
        "split::SplitPlan from storage",
        1000,
        (text, prop::collection::vec(target(), 0..20)),
        |(text, targets)| {
            let Ok(mut plan) = serde_json::from_str::<SplitPlan>(&text) else {
                return Ok(());
            };
            contiguous(&plan.parts())?;
            split_repeatedly(&mut plan, &targets, false)
        },
    );
}
