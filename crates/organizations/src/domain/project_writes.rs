//! Projects created, group committed ([`orgplane_storage::group_commit`]):
//! at thousands of `CreateProject` a second, one transaction per call
//! bounds the service by commits per second — on SQLite, callers queue for
//! its one writer and each transaction costs four hand-offs to sqlx's
//! connection thread (`BENCHMARKS.md`). Each project keeps its activity in
//! the same transaction, as every change here does.
//!
//! A name already taken (before the batch, or earlier in it, or by a
//! replica committing at the same time) is refused by the unique index
//! itself: the rows are inserted with `ON CONFLICT DO NOTHING`, and a row
//! the database did not return is the caller's `ALREADY_EXISTS`, while the
//! rest of the batch commits.

use std::collections::HashSet;

use orgplane_platform::{Error, principal::Principal};
use orgplane_storage::{
    activity::{self, action},
    group_commit::BatchWrite,
    statement_shapes::power_of_two_chunks,
};
use sea_orm::{DatabaseTransaction, EntityTrait, IntoActiveModel, TryInsertResult};

use super::projects::project_activity;
use crate::storage::projects;

/// A project to create: its row, checked and authorized, and its creator.
#[derive(Debug)]
pub(crate) struct NewProject {
    pub row: projects::Model,
    pub actor: Principal,
}

/// Inserts projects: one statement per chunk for the rows, one for their
/// activities.
#[derive(Debug)]
pub(crate) struct ProjectsCreated;

impl BatchWrite for ProjectsCreated {
    type Item = NewProject;
    type Output = projects::Model;

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        items: Vec<NewProject>,
    ) -> Result<Vec<Result<projects::Model, Error>>, Error> {
        let mut inserted = HashSet::with_capacity(items.len());
        // In one order for every batch: on PostgreSQL two batches committing
        // at once and wanting the same names then wait for each other in
        // turn rather than deadlock (which would fail both).
        let mut rows: Vec<projects::Model> = items.iter().map(|item| item.row.clone()).collect();
        rows.sort_unstable_by(|a, b| {
            (&a.organization_uuid, &a.name).cmp(&(&b.organization_uuid, &b.name))
        });
        for chunk in power_of_two_chunks(rows) {
            let rows = chunk.into_iter().map(IntoActiveModel::into_active_model);
            match projects::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([
                    projects::Column::OrganizationUuid,
                    projects::Column::Name,
                ])
                .exec_with_returning_many(txn)
                .await?
            {
                TryInsertResult::Inserted(rows) => {
                    inserted.extend(rows.into_iter().map(|row| row.uuid));
                }
                TryInsertResult::Empty | TryInsertResult::Conflicted => {}
            }
        }
        let mut activities = Vec::with_capacity(inserted.len());
        let results = items
            .into_iter()
            .map(|item| {
                if inserted.contains(&item.row.uuid) {
                    activities.push(project_activity(&item.row, &item.actor, action::CREATED));
                    Ok(item.row)
                } else {
                    Err(Error::already_exists("project", &item.row.name))
                }
            })
            .collect();
        activity::record_all(txn, activities).await?;
        Ok(results)
    }
}
