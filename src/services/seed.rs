//! Demo data: the UK's third National Action Plan (2016–18) commitments, shipped with
//! Convene in `seed/uk-nap-2016-18.json`. Idempotent by reference: seeding twice changes
//! nothing.

use chrono::NaiveDate;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use uuid::Uuid;

use super::Ctx;
use crate::db::{begin_write, now};
use crate::entities::commitment::{self, Status};
use crate::entities::milestone;
use crate::error::{AppError, AppResult};

const UK_NAP_2016_18: &str = include_str!("../../seed/uk-nap-2016-18.json");

#[derive(Deserialize)]
struct Plan {
    commitments: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    reference: String,
    title: String,
    action_plan: String,
    policy_area: String,
    lead_institution: Option<String>,
    #[serde(default)]
    support_institutions: Vec<String>,
    end_date: Option<String>,
    status: Option<String>,
    description: Option<String>,
    objective: Option<String>,
    #[serde(default)]
    milestones: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seeded {
    pub commitments: usize,
    pub milestones: usize,
    pub skipped: usize,
}

fn status(raw: Option<&str>) -> Status {
    match raw {
        Some("LIMITED") => Status::Limited,
        Some("SUBSTANTIAL") => Status::Substantial,
        Some("COMPLETE") => Status::Complete,
        Some("WITHDRAWN") => Status::Withdrawn,
        _ => Status::NotStarted,
    }
}

/// The last day of a "YYYY-MM" month.
fn end_of_month(raw: &str) -> Option<NaiveDate> {
    let (y, m) = raw.split_once('-')?;
    let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)?
    };
    next.pred_opt()
}

fn description(e: &Entry) -> String {
    let mut parts = Vec::new();
    if let Some(d) = &e.description {
        parts.push(d.clone());
    }
    if let Some(o) = &e.objective {
        parts.push(format!("**Objective:** {o}"));
    }
    if !e.support_institutions.is_empty() {
        parts.push(format!(
            "**Supported by:** {}",
            e.support_institutions.join(", ")
        ));
    }
    parts.join("\n\n")
}

pub async fn seed_demo(ctx: &Ctx) -> AppResult<Seeded> {
    let plan: Plan = serde_json::from_str(UK_NAP_2016_18).map_err(AppError::internal)?;
    let tx = begin_write(&ctx.db).await?;
    let mut seeded = Seeded::default();
    for e in &plan.commitments {
        let exists = commitment::Entity::find()
            .filter(commitment::Column::Reference.eq(e.reference.as_str()))
            .one(&tx)
            .await?
            .is_some();
        if exists {
            seeded.skipped += 1;
            continue;
        }
        let at = now();
        let c = commitment::ActiveModel {
            id: Set(Uuid::now_v7()),
            reference: Set(e.reference.clone()),
            title: Set(e.title.clone()),
            description: Set(description(e)),
            action_plan: Set(e.action_plan.clone()),
            lead_institution: Set(e.lead_institution.clone().unwrap_or_default()),
            policy_area: Set(e.policy_area.clone()),
            status: Set(status(e.status.as_deref())),
            follower_count: Set(0),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&tx)
        .await?;
        seeded.commitments += 1;
        let due_on = e.end_date.as_deref().and_then(end_of_month);
        for (i, title) in e.milestones.iter().enumerate() {
            milestone::ActiveModel {
                id: Set(Uuid::now_v7()),
                commitment_id: Set(c.id),
                position: Set(i32::try_from(i + 1).unwrap_or(i32::MAX)),
                title: Set(title.clone()),
                description: Set(String::new()),
                due_on: Set(due_on),
                status: Set(Status::NotStarted),
                created_at: Set(at),
                updated_at: Set(at),
            }
            .insert(&tx)
            .await?;
            seeded.milestones += 1;
        }
    }
    tx.commit().await?;
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_plan_parses_with_uk0072_and_its_milestones() {
        let plan: Plan = serde_json::from_str(UK_NAP_2016_18).unwrap();
        assert!(plan.commitments.len() >= 20);
        let uk72 = plan
            .commitments
            .iter()
            .find(|c| c.reference == "UK0072")
            .unwrap();
        assert_eq!(uk72.milestones.len(), 8);
        assert_eq!(
            end_of_month("2018-06"),
            NaiveDate::from_ymd_opt(2018, 6, 30)
        );
        assert_eq!(
            end_of_month("2018-12"),
            NaiveDate::from_ymd_opt(2018, 12, 31)
        );
    }
}
