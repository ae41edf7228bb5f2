//! One adapter for both faces of the catalog: `ModelRegistryService` and
//! `ComponentHubService` are the same RPCs over [`Kind::Model`] and
//! [`Kind::Component`] entries, with their own message names. Each face's
//! module names its messages, its conversions, `KIND`, `ENTRY_FIELDS`,
//! `VERSION_FIELDS`, `entry_fields` and `version_fields`, and invokes
//! [`entry_api!`]; the bodies live here once.
//!
//! [`Kind::Model`]: crate::domain::Kind::Model
//! [`Kind::Component`]: crate::domain::Kind::Component

/// Implements a face's gRPC service over the registry's entries.
macro_rules! entry_api {
    (
        impl $service:ident for $api:ident;
        entry: $entry:ident, entries: $entries:ident, target: $target:ident;
        convert: $convert_entry:path, $convert_version:path;
        $create:ident($CreateReq:ident, $CreateRes:ident, $create_name:literal);
        $get:ident($GetReq:ident, $GetRes:ident);
        $list:ident($ListReq:ident, $ListRes:ident);
        $update:ident($UpdateReq:ident, $UpdateRes:ident);
        $delete:ident($DeleteReq:ident, $DeleteRes:ident);
        $create_version:ident($CreateVersionReq:ident, $CreateVersionRes:ident, $create_version_name:literal);
        $get_version:ident($GetVersionReq:ident, $GetVersionRes:ident);
        $list_versions:ident($ListVersionsReq:ident, $ListVersionsRes:ident);
        $update_version:ident($UpdateVersionReq:ident, $UpdateVersionRes:ident);
        $delete_version:ident($DeleteVersionReq:ident, $DeleteVersionRes:ident);
        $transition:ident($TransitionReq:ident, $TransitionRes:ident);
        $list_stages:ident($ListStagesReq:ident, $ListStagesRes:ident);
        $($extra:tt)*
    ) => {
        #[tonic::async_trait]
        impl $service for $api {
            async fn $create(
                &self,
                req: Request<pb::$CreateReq>,
            ) -> Result<Response<pb::$CreateRes>, Status> {
                let principal = &require_principal(&req)?;
                let r = req.into_inner();
                let response = idempotency::once(
                    &self.0.db,
                    principal,
                    concat!(stringify!($service), "/", $create_name),
                    r.request_id.clone(),
                    r,
                    |r| async move {
                        let m = required(r.$entry, stringify!($entry))?;
                        let row = self
                            .0
                            .create_entry(
                                principal,
                                &r.organization,
                                KIND,
                                &m.name,
                                entry_fields(&m, None),
                            )
                            .await?;
                        Ok(pb::$CreateRes {
                            $entry: Some($convert_entry(row, 0)),
                        })
                    },
                )
                .await?;
                Ok(Response::new(response))
            }

            async fn $get(
                &self,
                req: Request<pb::$GetReq>,
            ) -> Result<Response<pb::$GetRes>, Status> {
                let principal = require_principal(&req)?;
                let r = req.get_ref();
                let row = self
                    .0
                    .get_entry(&principal, &r.organization, KIND, &r.$entry)
                    .await?;
                let count = self.0.version_count(&row).await?;
                Ok(Response::new(pb::$GetRes {
                    $entry: Some($convert_entry(row, count)),
                }))
            }

            async fn $list(
                &self,
                req: Request<pb::$ListReq>,
            ) -> Result<Response<pb::$ListRes>, Status> {
                let principal = require_principal(&req)?;
                let r = req.get_ref();
                let page = self
                    .0
                    .list_entries(
                        &principal,
                        &r.organization,
                        KIND,
                        &orgplane_storage::page::ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by).counting(r.include_total_size),
                    )
                    .await?;
                let mut entries = Vec::with_capacity(page.items.len());
                for row in page.items {
                    let count = self.0.version_count(&row).await?;
                    entries.push($convert_entry(row, count));
                }
                Ok(Response::new(pb::$ListRes {
                    $entries: entries,
                    next_page_token: page.next_page_token,
                    total_size: page.total_size as i64,
                }))
            }

            async fn $update(
                &self,
                req: Request<pb::$UpdateReq>,
            ) -> Result<Response<pb::$UpdateRes>, Status> {
                let principal = require_principal(&req)?;
                let r = req.into_inner();
                let m = required(r.$entry, stringify!($entry))?;
                let paths = update_paths(r.update_mask, ENTRY_FIELDS)?;
                let row = self
                    .0
                    .update_entry(
                        &principal,
                        &r.organization,
                        KIND,
                        &m.name,
                        entry_fields(&m, Some(&paths)),
                        &m.etag,
                    )
                    .await?;
                let count = self.0.version_count(&row).await?;
                Ok(Response::new(pb::$UpdateRes {
                    $entry: Some($convert_entry(row, count)),
                }))
            }

            async fn $delete(
                &self,
                req: Request<pb::$DeleteReq>,
            ) -> Result<Response<pb::$DeleteRes>, Status> {
                let principal = require_principal(&req)?;
                let r = req.get_ref();
                self.0
                    .delete_entry(&principal, &r.organization, KIND, &r.$entry, r.force)
                    .await?;
                Ok(Response::new(pb::$DeleteRes {}))
            }

            async fn $create_version(
                &self,
                req: Request<pb::$CreateVersionReq>,
            ) -> Result<Response<pb::$CreateVersionRes>, Status> {
                let principal = &require_principal(&req)?;
                let r = req.into_inner();
                let response = idempotency::once(
                    &self.0.db,
                    principal,
                    concat!(stringify!($service), "/", $create_version_name),
                    r.request_id.clone(),
                    r,
                    |r| async move {
                        let v = required(r.version, "version")?;
                        let row = self
                            .0
                            .create_version(
                                principal,
                                &r.organization,
                                KIND,
                                &r.$entry,
                                &v.name,
                                version_fields(&v, None),
                            )
                            .await?;
                        Ok(pb::$CreateVersionRes {
                            version: Some($convert_version(row)),
                        })
                    },
                )
                .await?;
                Ok(Response::new(response))
            }

            async fn $get_version(
                &self,
                req: Request<pb::$GetVersionReq>,
            ) -> Result<Response<pb::$GetVersionRes>, Status> {
                let principal = require_principal(&req)?;
                let r = req.get_ref();
                let row = self
                    .0
                    .get_version(&principal, &r.organization, KIND, &r.$entry, &r.version)
                    .await?;
                Ok(Response::new(pb::$GetVersionRes {
                    version: Some($convert_version(row)),
                }))
            }

            async fn $list_versions(
                &self,
                req: Request<pb::$ListVersionsReq>,
            ) -> Result<Response<pb::$ListVersionsRes>, Status> {
                let principal = require_principal(&req)?;
                let r = req.get_ref();
                let page = self
                    .0
                    .list_versions(
                        &principal,
                        &r.organization,
                        KIND,
                        &r.$entry,
                        &orgplane_storage::page::ListQuery::new(r.page_size, &r.page_token, &r.filter, &r.order_by).counting(r.include_total_size),
                    )
                    .await?;
                Ok(Response::new(pb::$ListVersionsRes {
                    versions: page.items.into_iter().map($convert_version).collect(),
                    next_page_token: page.next_page_token,
                    total_size: page.total_size as i64,
                }))
            }

            async fn $update_version(
                &self,
                req: Request<pb::$UpdateVersionReq>,
            ) -> Result<Response<pb::$UpdateVersionRes>, Status> {
                let principal = require_principal(&req)?;
                let r = req.into_inner();
                let v = required(r.version, "version")?;
                let paths = update_paths(r.update_mask, VERSION_FIELDS)?;
                let target = paths
                    .iter()
                    .any(|p| p == stringify!($entry))
                    .then_some(r.$target.as_str());
                let row = self
                    .0
                    .update_version(
                        &principal,
                        &r.organization,
                        KIND,
                        &r.$entry,
                        &v.name,
                        version_fields(&v, Some(&paths)),
                        target,
                        &v.etag,
                    )
                    .await?;
                Ok(Response::new(pb::$UpdateVersionRes {
                    version: Some($convert_version(row)),
                }))
            }

            async fn $delete_version(
                &self,
                req: Request<pb::$DeleteVersionReq>,
            ) -> Result<Response<pb::$DeleteVersionRes>, Status> {
                let principal = require_principal(&req)?;
                let r = req.get_ref();
                self.0
                    .delete_version(&principal, &r.organization, KIND, &r.$entry, &r.version)
                    .await?;
                Ok(Response::new(pb::$DeleteVersionRes {}))
            }

            async fn $transition(
                &self,
                req: Request<pb::$TransitionReq>,
            ) -> Result<Response<pb::$TransitionRes>, Status> {
                let principal = require_principal(&req)?;
                let r = req.into_inner();
                let condition = r.condition.unwrap_or_default();
                let row = self
                    .0
                    .transition(
                        &principal,
                        &r.organization,
                        KIND,
                        &r.$entry,
                        &r.version,
                        Transition {
                            stage: r.stage,
                            reason: condition.reason,
                            message: condition.message,
                        },
                    )
                    .await?;
                Ok(Response::new(pb::$TransitionRes {
                    version: Some($convert_version(row)),
                }))
            }

            async fn $list_stages(
                &self,
                req: Request<pb::$ListStagesReq>,
            ) -> Result<Response<pb::$ListStagesRes>, Status> {
                let principal = require_principal(&req)?;
                let r = req.get_ref();
                let page = self
                    .0
                    .list_stages(
                        &principal,
                        &r.organization,
                        KIND,
                        &r.$entry,
                        &r.version,
                        &orgplane_storage::page::ListQuery::pages(r.page_size, &r.page_token).counting(r.include_total_size),
                    )
                    .await?;
                Ok(Response::new(pb::$ListStagesRes {
                    stages: page.items.into_iter().map(convert::stage).collect(),
                    next_page_token: page.next_page_token,
                    total_size: page.total_size as i64,
                }))
            }

                $($extra)*
            }
    };
}

pub(super) use entry_api;
