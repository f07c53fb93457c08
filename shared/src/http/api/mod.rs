//! The Harbor-compatible management API (`/api/v2.0`): same paths, JSON
//! field names and semantics as Harbor's, so Harbor clients and scripts work
//! unchanged. Errors use Harbor's body, `{"errors":[{"code","message"}]}`,
//! for unknown paths too. Responses are `Serialize` structs shaped as
//! Harbor's definitions; request bodies ignore fields they do not know, as
//! Harbor does.
//!
//! Handlers authenticate through [`Caller`], ask [`crate::auth::authorize`]
//! and call services; they hold no rules of their own. Listings take
//! Harbor's `page`/`page_size` and `q` ([`Paging`], [`parse_q`]) and answer
//! with `X-Total-Count` and a `Link` whose `next` carries the position of
//! the page, so a client following it pays only for its page.

mod audit;
mod configurations;
mod cosign_keys;
mod cve_allowlist;
mod cve_export;
mod gc;
mod icons;
mod immutability;
mod jobs;
mod jobservice;
mod labels;
mod ldap;
mod members;
mod oidc_ping;
pub mod openapi;
mod preheat;
mod project_metadata;
mod projects;
mod quotas;
mod registries;
mod replication;
mod repositories;
mod retention;
mod robots;
mod scan;
mod scan_all;
mod scanners;
mod security_hub;
mod system;
mod usergroups;
mod users;
mod webhooks;

use std::sync::Arc;

use std::collections::BTreeMap;

use crate::events::Actor;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::Serialize;

use crate::auth::session::Session;
use crate::auth::{AuthError, Decision, On, ProjectAccess, Subject, UserPrincipal, access_to, authorize, oidc};
use crate::rbac::Perm;
use crate::service::ServiceError;
use crate::service::paging::{Listing, MAX_PAGE_SIZE, Match, PageRequest};
use crate::service::projects::Project;
use crate::service::settings::AuthMode;
use crate::service::users::ADMIN;

use super::state::AppState;

pub const PREFIX: &str = "/api/v2.0";

/// The `/api/v2.0` routes.
pub fn routes() -> Router<Arc<AppState>> {
    table().into_parts().0.fallback(unknown_path).method_not_allowed_fallback(method_not_allowed)
}

/// Every operation of the API, once: the router and the OpenAPI document
/// ([`openapi`]) are both made from it. Operation ids are Harbor's.
fn table() -> openapi::Routes {
    openapi::Routes::new()
        .get("/ping", "getPing", "ping", 200, system::ping)
        .get("/health", "getHealth", "health", 200, system::health)
        .returns::<system::Health>()
        .get("/systeminfo", "getSystemInfo", "systeminfo", 200, system::systeminfo)
        .returns::<system::GeneralInfo>()
        .get("/systeminfo/volumes", "getVolumes", "systeminfo", 200, system::volumes)
        .returns::<system::Volumes>()
        .get("/systeminfo/getcert", "getCert", "systeminfo", 200, system::getcert)
        .get("/projects", "listProjects", "project", 200, projects::list)
        .returns::<Vec<projects::ProjectView>>()
        .post("/projects", "createProject", "project", 201, projects::create)
        .accepts::<projects::CreateBody>()
        .head("/projects", "headProject", "project", 200, projects::exists)
        .get("/projects/{project_name_or_id}", "getProject", "project", 200, projects::get)
        .returns::<projects::ProjectView>()
        .put("/projects/{project_name_or_id}", "updateProject", "project", 200, projects::update)
        .accepts::<projects::UpdateBody>()
        .delete("/projects/{project_name_or_id}", "deleteProject", "project", 200, projects::delete)
        .get("/projects/{project_name_or_id}/summary", "getProjectSummary", "project", 200, projects::summary)
        .returns::<projects::Summary>()
        .get("/projects/{project_name_or_id}/_deletable", "getProjectDeletable", "project", 200, projects::deletable)
        .get("/projects/{project_name_or_id}/members", "listProjectMembers", "member", 200, members::list)
        .returns::<Vec<members::MemberView>>()
        .post("/projects/{project_name_or_id}/members", "createProjectMember", "member", 201, members::create)
        .accepts::<members::CreateBody>()
        .get("/projects/{project_name_or_id}/members/{mid}", "getProjectMember", "member", 200, members::get)
        .returns::<members::MemberView>()
        .put("/projects/{project_name_or_id}/members/{mid}", "updateProjectMember", "member", 200, members::update)
        .accepts::<members::RoleBody>()
        .delete("/projects/{project_name_or_id}/members/{mid}", "deleteProjectMember", "member", 200, members::delete)
        .get("/repositories", "listAllRepositories", "repository", 200, repositories::list_all)
        .returns::<Vec<repositories::RepositoryView>>()
        .get("/projects/{project_name_or_id}/artifacts", "listArtifactsOfProject", "project", 200, repositories::list_project_artifacts)
        .returns::<Vec<repositories::ArtifactView>>()
        .get("/projects/{project_name_or_id}/repositories", "listRepositories", "repository", 200, repositories::list)
        .returns::<Vec<repositories::RepositoryView>>()
        .get("/projects/{project_name_or_id}/repositories/{repository_name}", "getRepository", "repository", 200, repositories::get)
        .returns::<repositories::RepositoryView>()
        .put("/projects/{project_name_or_id}/repositories/{repository_name}", "updateRepository", "repository", 200, repositories::update)
        .accepts::<repositories::RepositoryBody>()
        .delete("/projects/{project_name_or_id}/repositories/{repository_name}", "deleteRepository", "repository", 200, repositories::delete)
        .get("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts", "listArtifacts", "artifact", 200, repositories::list_artifacts)
        .returns::<Vec<repositories::ArtifactView>>()
        .post("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts", "CopyArtifact", "artifact", 201, repositories::copy_artifact)
        .get("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}", "getArtifact", "artifact", 200, repositories::get_artifact)
        .returns::<repositories::ArtifactView>()
        .delete("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}", "deleteArtifact", "artifact", 200, repositories::delete_artifact)
        .get("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/accessories", "listAccessories", "artifact", 200, repositories::list_accessories)
        .returns::<Vec<repositories::AccessoryView>>()
        .post("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/labels", "addLabel", "artifact", 200, labels::add_to_artifact)
        .accepts::<labels::LabelBody>()
        .delete("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/labels/{label_id}", "removeLabel", "artifact", 200, labels::remove_from_artifact)
        .get("/icons/{digest}", "getIcon", "icon", 200, icons::get)
        .returns::<icons::IconView>()
        .get("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/additions/vulnerabilities", "getVulnerabilitiesAddition", "artifact", 200, scan::vulnerabilities)
        .post("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/scan", "scanArtifact", "scan", 202, scan::scan)
        .accepts::<scan::ScanTypeBody>()
        .post("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/scan/stop", "stopScanArtifact", "scan", 202, scan::stop)
        .accepts::<scan::ScanTypeBody>()
        .get("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/scan/{report_id}/log", "getReportLog", "scan", 200, scan::log)
        .post("/export/cve", "exportScanData", "scan data export", 200, cve_export::start)
        .accepts::<cve_export::ExportRequest>()
        .returns::<cve_export::JobView>()
        .get("/export/cve/execution/{execution_id}", "getScanDataExportExecution", "scan data export", 200, cve_export::get)
        .returns::<cve_export::ExecutionView>()
        .get("/export/cve/executions", "getScanDataExportExecutionList", "scan data export", 200, cve_export::list)
        .returns::<cve_export::ExecutionListView>()
        .get("/export/cve/download/{execution_id}", "downloadScanData", "scan data export", 200, cve_export::download)
        .get("/system/scanAll/schedule", "getScanAllSchedule", "scanAll", 200, scan_all::schedule_get)
        .put("/system/scanAll/schedule", "updateScanAllSchedule", "scanAll", 200, scan_all::schedule_set)
        .accepts::<jobs::ScheduleBody>()
        .post("/system/scanAll/schedule", "createScanAllSchedule", "scanAll", 201, scan_all::schedule_set)
        .accepts::<jobs::ScheduleBody>()
        .post("/system/scanAll/stop", "stopScanAll", "scanAll", 202, scan_all::stop)
        .get("/scans/all/metrics", "getLatestScanAllMetrics", "scanAll", 200, scan_all::all_metrics)
        .returns::<scan_all::StatsView>()
        .get("/scans/schedule/metrics", "getLatestScheduledScanAllMetrics", "scanAll", 200, scan_all::schedule_metrics)
        .returns::<scan_all::StatsView>()
        .get("/security/summary", "getSecuritySummary", "securityhub", 200, security_hub::summary)
        .returns::<crate::service::security_hub::SecuritySummary>()
        .get("/security/vul", "ListVulnerabilities", "securityhub", 200, security_hub::list)
        .returns::<Vec<security_hub::VulnerabilityItem>>()
        .get("/scanners", "listScanners", "scanner", 200, scanners::list)
        .returns::<Vec<scanners::RegistrationView>>()
        .post("/scanners", "createScanner", "scanner", 201, scanners::create)
        .accepts::<scanners::RegistrationBody>()
        .post("/scanners/ping", "pingScanner", "scanner", 200, scanners::ping)
        .accepts::<scanners::RegistrationBody>()
        .get("/scanners/{registration_id}", "getScanner", "scanner", 200, scanners::get)
        .returns::<scanners::RegistrationView>()
        .put("/scanners/{registration_id}", "updateScanner", "scanner", 200, scanners::update)
        .accepts::<scanners::RegistrationBody>()
        .delete("/scanners/{registration_id}", "deleteScanner", "scanner", 200, scanners::delete)
        .returns::<scanners::RegistrationView>()
        .patch("/scanners/{registration_id}", "setScannerAsDefault", "scanner", 200, scanners::set_default)
        .accepts::<scanners::DefaultBody>()
        .get("/scanners/{registration_id}/metadata", "getScannerMetadata", "scanner", 200, scanners::metadata)
        .returns::<crate::scanner::AdapterMetadata>()
        .get("/projects/{project_name_or_id}/cosign-keys", "getCosignKeysOfProject", "berth", 200, cosign_keys::get)
        .returns::<cosign_keys::KeysView>()
        .put("/projects/{project_name_or_id}/cosign-keys", "setCosignKeysOfProject", "berth", 200, cosign_keys::put)
        .accepts::<cosign_keys::KeysView>()
        .get("/projects/{project_name_or_id}/scanner", "getScannerOfProject", "project", 200, scanners::of_project)
        .returns::<scanners::RegistrationView>()
        .put("/projects/{project_name_or_id}/scanner", "setScannerOfProject", "project", 200, scanners::set_of_project)
        .accepts::<scanners::ProjectScannerBody>()
        .get("/projects/{project_name_or_id}/scanner/candidates", "listScannerCandidatesOfProject", "project", 200, scanners::candidates)
        .returns::<Vec<scanners::RegistrationView>>()
        .get("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/additions/{addition}", "getAddition", "artifact", 200, repositories::addition)
        .get("/system/CVEAllowlist", "getSystemCVEAllowlist", "SystemCVEAllowlist", 200, cve_allowlist::get)
        .returns::<cve_allowlist::AllowlistView>()
        .put("/system/CVEAllowlist", "putSystemCVEAllowlist", "SystemCVEAllowlist", 200, cve_allowlist::put)
        .accepts::<cve_allowlist::AllowlistBody>()
        .get("/registries", "listRegistries", "registry", 200, registries::list)
        .returns::<Vec<registries::RegistryView>>()
        .post("/registries", "createRegistry", "registry", 201, registries::create)
        .accepts::<registries::RegistryBody>()
        .post("/registries/ping", "pingRegistry", "registry", 200, registries::ping)
        .accepts::<registries::PingBody>()
        .get("/registries/{id}", "getRegistry", "registry", 200, registries::get)
        .returns::<registries::RegistryView>()
        .put("/registries/{id}", "updateRegistry", "registry", 200, registries::update)
        .accepts::<registries::UpdateBody>()
        .delete("/registries/{id}", "deleteRegistry", "registry", 200, registries::delete)
        .get("/registries/{id}/info", "getRegistryInfo", "registry", 200, registries::info)
        .returns::<crate::remote::adapter::RegistryInfo>()
        .get("/replication/adapters", "listRegistryProviderTypes", "registry", 200, registries::adapters)
        .returns::<Vec<String>>()
        .get("/replication/adapterinfos", "listRegistryProviderInfos", "registry", 200, registries::adapter_infos)
        .returns::<std::collections::BTreeMap<String, crate::remote::adapter::ProviderInfo>>()
        .get("/replication/policies", "listReplicationPolicies", "replication", 200, replication::list)
        .returns::<Vec<replication::PolicyView>>()
        .post("/replication/policies", "createReplicationPolicy", "replication", 201, replication::create)
        .accepts::<replication::PolicyBody>()
        .get("/replication/policies/{id}", "getReplicationPolicy", "replication", 200, replication::get)
        .returns::<replication::PolicyView>()
        .put("/replication/policies/{id}", "updateReplicationPolicy", "replication", 200, replication::update)
        .accepts::<replication::PolicyBody>()
        .delete("/replication/policies/{id}", "deleteReplicationPolicy", "replication", 200, replication::delete)
        .get("/replication/executions", "listReplicationExecutions", "replication", 200, replication::executions)
        .returns::<Vec<replication::ExecutionView>>()
        .post("/replication/executions", "startReplication", "replication", 201, replication::start)
        .accepts::<replication::StartBody>()
        .get("/replication/executions/{id}", "getReplicationExecution", "replication", 200, replication::execution)
        .returns::<replication::ExecutionView>()
        .put("/replication/executions/{id}", "stopReplication", "replication", 200, replication::stop)
        .get("/replication/executions/{id}/tasks", "listReplicationTasks", "replication", 200, replication::tasks)
        .returns::<Vec<replication::TaskView>>()
        .get("/replication/executions/{id}/tasks/{task_id}/log", "getReplicationLog", "replication", 200, replication::task_log)
        .get("/labels", "ListLabels", "label", 200, labels::list)
        .returns::<Vec<labels::LabelView>>()
        .post("/labels", "CreateLabel", "label", 201, labels::create)
        .accepts::<labels::LabelBody>()
        .get("/labels/{label_id}", "GetLabelByID", "label", 200, labels::get)
        .returns::<labels::LabelView>()
        .put("/labels/{label_id}", "UpdateLabel", "label", 200, labels::update)
        .accepts::<labels::LabelBody>()
        .delete("/labels/{label_id}", "DeleteLabel", "label", 200, labels::delete)
        .get("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/tags", "listTags", "artifact", 200, repositories::list_tags)
        .returns::<Vec<repositories::TagView>>()
        .post("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/tags", "createTag", "artifact", 201, repositories::create_tag)
        .accepts::<repositories::TagBody>()
        .delete("/projects/{project_name_or_id}/repositories/{repository_name}/artifacts/{reference}/tags/{tag_name}", "deleteTag", "artifact", 200, repositories::delete_tag)
        .get("/users", "listUsers", "user", 200, users::list)
        .returns::<Vec<users::UserView>>()
        .post("/users", "createUser", "user", 201, users::create)
        .accepts::<users::CreateBody>()
        .get("/users/current", "getCurrentUserInfo", "user", 200, users::current)
        .returns::<users::UserView>()
        .get("/users/current/permissions", "getCurrentUserPermissions", "user", 200, users::permissions)
        .get("/users/search", "searchUsers", "user", 200, users::search)
        .returns::<Vec<users::Found>>()
        .get("/users/{user_id}", "getUser", "user", 200, users::get)
        .returns::<users::UserView>()
        .put("/users/{user_id}", "updateUserProfile", "user", 200, users::update)
        .accepts::<users::ProfileBody>()
        .delete("/users/{user_id}", "deleteUser", "user", 200, users::delete)
        .put("/users/{user_id}/sysadmin", "setUserSysAdmin", "user", 200, users::set_sysadmin)
        .accepts::<users::SysadminBody>()
        .put("/users/{user_id}/password", "updateUserPassword", "user", 200, users::set_password)
        .accepts::<users::PasswordBody>()
        .put("/users/{user_id}/cli_secret", "setCliSecret", "user", 200, users::set_cli_secret)
        .accepts::<users::CliSecretBody>()
        .post("/system/oidc/ping", "pingOIDC", "oidc", 200, oidc_ping::ping)
        .accepts::<oidc_ping::PingBody>()
        .get("/usergroups", "listUserGroups", "usergroup", 200, usergroups::list)
        .returns::<Vec<usergroups::GroupView>>()
        .post("/usergroups", "createUserGroup", "usergroup", 201, usergroups::create)
        .accepts::<usergroups::GroupBody>()
        .get("/usergroups/search", "searchUserGroups", "usergroup", 200, usergroups::search)
        .returns::<Vec<usergroups::Found>>()
        .get("/usergroups/{group_id}", "getUserGroup", "usergroup", 200, usergroups::get)
        .returns::<usergroups::GroupView>()
        .put("/usergroups/{group_id}", "updateUserGroup", "usergroup", 200, usergroups::update)
        .accepts::<usergroups::GroupBody>()
        .delete("/usergroups/{group_id}", "deleteUserGroup", "usergroup", 200, usergroups::delete)
        .get("/robots", "ListRobot", "robot", 200, robots::list)
        .returns::<Vec<robots::RobotView>>()
        .post("/robots", "CreateRobot", "robot", 201, robots::create)
        .returns::<robots::Created>()
        .accepts::<robots::RobotBody>()
        .get("/robots/{robot_id}", "GetRobotByID", "robot", 200, robots::get)
        .returns::<robots::RobotView>()
        .put("/robots/{robot_id}", "UpdateRobot", "robot", 200, robots::update)
        .accepts::<robots::RobotBody>()
        .patch("/robots/{robot_id}", "RefreshSec", "robot", 200, robots::refresh)
        .returns::<robots::Secret>()
        .delete("/robots/{robot_id}", "DeleteRobot", "robot", 200, robots::delete)
        .get("/configurations", "getConfigurations", "configure", 200, configurations::get)
        .put("/configurations", "updateConfigurations", "configure", 200, configurations::update)
        .accepts::<serde_json::Map<String, serde_json::Value>>()
        .get("/internalconfig", "getInternalconfig", "configure", 200, configurations::internal)
        .post("/ldap/ping", "pingLdap", "Ldap", 200, ldap::ping)
        .returns::<ldap::PingResult>()
        .get("/ldap/users/search", "searchLdapUser", "Ldap", 200, ldap::search_users)
        .returns::<Vec<ldap::LdapUserView>>()
        .post("/ldap/users/import", "importLdapUser", "Ldap", 200, ldap::import_users)
        .accepts::<ldap::ImportBody>()
        .get("/ldap/groups/search", "searchLdapGroup", "Ldap", 200, ldap::search_groups)
        .returns::<Vec<ldap::LdapGroupView>>()
        .get("/audit-logs", "listAuditLogs", "auditlog", 200, audit::list_all)
        .returns::<Vec<audit::AuditLogView>>()
        .get("/auditlog-exts", "listAuditLogExts", "auditlog", 200, audit::list_all_ext)
        .returns::<Vec<audit::AuditLogExtView>>()
        .get("/auditlog-exts/events", "listAuditLogEventTypes", "auditlog", 200, audit::event_types)
        .get("/projects/{project_name_or_id}/logs", "getLogs", "project", 200, audit::list_project)
        .returns::<Vec<audit::AuditLogView>>()
        .get("/projects/{project_name_or_id}/auditlog-exts", "getLogExts", "project", 200, audit::list_project_ext)
        .returns::<Vec<audit::AuditLogExtView>>()
        .get("/projects/{project_name_or_id}/metadatas", "listProjectMetadatasWithoutSlash", "projectMetadata", 200, project_metadata::list)
        .post("/projects/{project_name_or_id}/metadatas", "addProjectMetadatasWithoutSlash", "projectMetadata", 200, project_metadata::add)
        .accepts::<std::collections::BTreeMap<String, String>>()
        .get("/projects/{project_name_or_id}/metadatas/", "listProjectMetadatas", "projectMetadata", 200, project_metadata::list)
        .post("/projects/{project_name_or_id}/metadatas/", "addProjectMetadatas", "projectMetadata", 200, project_metadata::add)
        .accepts::<std::collections::BTreeMap<String, String>>()
        .get("/projects/{project_name_or_id}/metadatas/{meta_name}", "getProjectMetadata", "projectMetadata", 200, project_metadata::get)
        .put("/projects/{project_name_or_id}/metadatas/{meta_name}", "updateProjectMetadata", "projectMetadata", 200, project_metadata::update)
        .accepts::<std::collections::BTreeMap<String, String>>()
        .delete("/projects/{project_name_or_id}/metadatas/{meta_name}", "deleteProjectMetadata", "projectMetadata", 200, project_metadata::delete)
        .get("/projects/{project_name_or_id}/immutabletagrules", "ListImmuRules", "immutable", 200, immutability::list)
        .returns::<Vec<crate::service::immutability::ImmutableRule>>()
        .post("/projects/{project_name_or_id}/immutabletagrules", "CreateImmuRule", "immutable", 201, immutability::create)
        .accepts::<crate::service::immutability::ImmutableRule>()
        .put("/projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}", "UpdateImmuRule", "immutable", 200, immutability::update)
        .accepts::<crate::service::immutability::ImmutableRule>()
        .delete("/projects/{project_name_or_id}/immutabletagrules/{immutable_rule_id}", "DeleteImmuRule", "immutable", 200, immutability::delete)
        .get("/p2p/preheat/providers", "ListProviders", "preheat", 200, preheat::providers)
        .returns::<Vec<crate::p2p::Metadata>>()
        .post("/p2p/preheat/instances/ping", "PingInstances", "preheat", 200, preheat::ping_instance)
        .accepts::<preheat::InstanceBody>()
        .get("/p2p/preheat/instances", "ListInstances", "preheat", 200, preheat::list_instances)
        .returns::<Vec<preheat::InstanceView>>()
        .post("/p2p/preheat/instances", "CreateInstance", "preheat", 201, preheat::create_instance)
        .accepts::<preheat::InstanceBody>()
        .get("/p2p/preheat/instances/{preheat_instance_name}", "GetInstance", "preheat", 200, preheat::get_instance)
        .returns::<preheat::InstanceView>()
        .put("/p2p/preheat/instances/{preheat_instance_name}", "UpdateInstance", "preheat", 200, preheat::update_instance)
        .accepts::<preheat::InstanceBody>()
        .delete("/p2p/preheat/instances/{preheat_instance_name}", "DeleteInstance", "preheat", 200, preheat::delete_instance)
        .get("/projects/{project_name_or_id}/preheat/providers", "ListProvidersUnderProject", "preheat", 200, preheat::providers_of_project)
        .returns::<Vec<preheat::ProviderUnderProject>>()
        .get("/projects/{project_name_or_id}/preheat/policies", "ListPolicies", "preheat", 200, preheat::list_policies)
        .returns::<Vec<preheat::PolicyView>>()
        .post("/projects/{project_name_or_id}/preheat/policies", "CreatePolicy", "preheat", 201, preheat::create_policy)
        .accepts::<preheat::PolicyBody>()
        .get("/projects/{project_name_or_id}/preheat/policies/{preheat_policy_name}", "GetPolicy", "preheat", 200, preheat::get_policy)
        .returns::<preheat::PolicyView>()
        .put("/projects/{project_name_or_id}/preheat/policies/{preheat_policy_name}", "UpdatePolicy", "preheat", 200, preheat::update_policy)
        .accepts::<preheat::PolicyBody>()
        .post("/projects/{project_name_or_id}/preheat/policies/{preheat_policy_name}", "ManualPreheat", "preheat", 201, preheat::execute)
        .delete("/projects/{project_name_or_id}/preheat/policies/{preheat_policy_name}", "DeletePolicy", "preheat", 200, preheat::delete_policy)
        .get("/projects/{project_name_or_id}/preheat/policies/{preheat_policy_name}/executions", "ListExecutions", "preheat", 200, preheat::executions)
        .returns::<Vec<jobs::ExecutionView>>()
        .get("/projects/{project_name_or_id}/preheat/policies/{preheat_policy_name}/executions/{execution_id}", "GetExecution", "preheat", 200, preheat::execution)
        .returns::<jobs::ExecutionView>()
        .patch("/projects/{project_name_or_id}/preheat/policies/{preheat_policy_name}/executions/{execution_id}", "StopExecution", "preheat", 200, preheat::stop)
        .accepts::<preheat::StopBody>()
        .get("/projects/{project_name_or_id}/preheat/policies/{preheat_policy_name}/executions/{execution_id}/tasks", "ListTasks", "preheat", 200, preheat::tasks)
        .returns::<Vec<jobs::TaskView>>()
        .get("/projects/{project_name_or_id}/preheat/policies/{preheat_policy_name}/executions/{execution_id}/tasks/{task_id}/logs", "GetPreheatLog", "preheat", 200, preheat::task_log)
        .get("/projects/{project_name_or_id}/webhook/policies", "ListWebhookPoliciesOfProject", "webhook", 200, webhooks::list)
        .returns::<Vec<webhooks::PolicyView>>()
        .post("/projects/{project_name_or_id}/webhook/policies", "CreateWebhookPolicyOfProject", "webhook", 201, webhooks::create)
        .accepts::<webhooks::PolicyBody>()
        .get("/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}", "GetWebhookPolicyOfProject", "webhook", 200, webhooks::get)
        .returns::<webhooks::PolicyView>()
        .put("/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}", "UpdateWebhookPolicyOfProject", "webhook", 200, webhooks::update)
        .accepts::<webhooks::PolicyBody>()
        .delete("/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}", "DeleteWebhookPolicyOfProject", "webhook", 200, webhooks::delete)
        .get("/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}/executions", "ListExecutionsOfWebhookPolicy", "webhook", 200, webhooks::executions)
        .returns::<Vec<jobs::ExecutionView>>()
        .get("/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}/executions/{execution_id}/tasks", "ListTasksOfWebhookExecution", "webhook", 200, webhooks::tasks)
        .returns::<Vec<jobs::TaskView>>()
        .get("/projects/{project_name_or_id}/webhook/policies/{webhook_policy_id}/executions/{execution_id}/tasks/{task_id}/log", "GetLogsOfWebhookTask", "webhook", 200, webhooks::task_log)
        .get("/projects/{project_name_or_id}/webhook/events", "GetSupportedEventTypes", "webhook", 200, webhooks::event_types)
        .get("/projects/{project_name_or_id}/webhook/lasttrigger", "LastTrigger", "webhook", 200, webhooks::last_trigger)
        .get("/projects/{project_name_or_id}/webhook/jobs", "ListWebhookJobs", "webhookjob", 200, webhooks::jobs)
        .get("/system/purgeaudit", "getPurgeHistory", "purge", 200, jobs::purge_list)
        .returns::<Vec<jobs::ExecHistoryView>>()
        .get("/system/purgeaudit/schedule", "getPurgeSchedule", "purge", 200, jobs::purge_schedule_get)
        .post("/system/purgeaudit/schedule", "createPurgeSchedule", "purge", 201, jobs::purge_schedule_set)
        .accepts::<jobs::ScheduleBody>()
        .put("/system/purgeaudit/schedule", "updatePurgeSchedule", "purge", 200, jobs::purge_schedule_set)
        .accepts::<jobs::ScheduleBody>()
        .get("/system/purgeaudit/{purge_id}", "getPurgeJob", "purge", 200, jobs::purge_get)
        .returns::<jobs::ExecHistoryView>()
        .put("/system/purgeaudit/{purge_id}", "stopPurge", "purge", 200, jobs::purge_stop)
        .get("/system/purgeaudit/{purge_id}/log", "getPurgeJobLog", "purge", 200, jobs::purge_log)
        .get("/system/gc", "getGCHistory", "gc", 200, gc::list)
        .returns::<Vec<jobs::ExecHistoryView>>()
        .get("/system/gc/schedule", "getGCSchedule", "gc", 200, gc::schedule_get)
        .post("/system/gc/schedule", "createGCSchedule", "gc", 201, gc::schedule_set)
        .accepts::<jobs::ScheduleBody>()
        .put("/system/gc/schedule", "updateGCSchedule", "gc", 200, gc::schedule_set)
        .accepts::<jobs::ScheduleBody>()
        .get("/system/gc/{gc_id}", "getGC", "gc", 200, gc::get)
        .returns::<jobs::ExecHistoryView>()
        .put("/system/gc/{gc_id}", "stopGC", "gc", 200, gc::stop)
        .get("/system/gc/{gc_id}/log", "getGCLog", "gc", 200, gc::log)
        .get("/schedules", "listSchedules", "schedule", 200, jobs::schedules)
        .get("/retentions/metadatas", "getRentenitionMetadata", "Retention", 200, retention::metadatas)
        .post("/retentions", "createRetention", "Retention", 201, retention::create)
        .accepts::<crate::service::retention::RetentionPolicy>()
        .get("/retentions/{id}", "getRetention", "Retention", 200, retention::get)
        .returns::<crate::service::retention::RetentionPolicy>()
        .put("/retentions/{id}", "updateRetention", "Retention", 200, retention::update)
        .accepts::<crate::service::retention::RetentionPolicy>()
        .delete("/retentions/{id}", "deleteRetention", "Retention", 200, retention::delete)
        .get("/retentions/{id}/executions", "listRetentionExecutions", "Retention", 200, retention::executions)
        .returns::<Vec<retention::ExecutionView>>()
        .post("/retentions/{id}/executions", "triggerRetentionExecution", "Retention", 200, retention::trigger)
        .accepts::<retention::TriggerBody>()
        .patch("/retentions/{id}/executions/{eid}", "operateRetentionExecution", "Retention", 200, retention::operate)
        .accepts::<retention::OperateBody>()
        .get("/retentions/{id}/executions/{eid}/tasks", "listRetentionTasks", "Retention", 200, retention::tasks)
        .returns::<Vec<retention::TaskView>>()
        .get("/retentions/{id}/executions/{eid}/tasks/{tid}", "getRetentionTaskLog", "Retention", 200, retention::task_log)
        .get("/statistics", "getStatistic", "statistic", 200, projects::statistics)
        .returns::<crate::service::statistics::Statistics>()
        .get("/permissions", "getPermissions", "permissions", 200, robots::permissions)
        .get("/search", "search", "search", 200, projects::search)
        .get("/quotas", "listQuotas", "quota", 200, quotas::list)
        .returns::<Vec<quotas::QuotaView>>()
        .get("/quotas/{id}", "getQuota", "quota", 200, quotas::get)
        .returns::<quotas::QuotaView>()
        .put("/quotas/{id}", "updateQuota", "quota", 200, quotas::update)
        .accepts::<quotas::UpdateBody>()
        .get("/schedules/{job_type}/paused", "getSchedulePaused", "schedule", 200, jobservice::schedules_paused)
        .get("/jobservice/queues", "listJobQueues", "jobservice", 200, jobservice::queues)
        .returns::<Vec<jobservice::JobQueueView>>()
        .put("/jobservice/queues/{job_type}", "actionPendingJobs", "jobservice", 200, jobservice::action)
        .accepts::<jobservice::ActionRequest>()
        .get("/jobservice/pools", "getWorkerPools", "jobservice", 200, jobservice::pools)
        .returns::<Vec<jobservice::PoolView>>()
        .get("/jobservice/pools/{pool_id}/workers", "getWorkers", "jobservice", 200, jobservice::workers)
        .returns::<Vec<jobservice::WorkerView>>()
        .put("/jobservice/jobs/{job_id}", "stopRunningJob", "jobservice", 200, jobservice::stop_job)
        .get("/jobservice/jobs/{job_id}/log", "actionGetJobLog", "jobservice", 200, jobservice::job_log)
        .get("/openapi.json", "getOpenApiDocument", "berth", 200, openapi::get)
}

/// Any path under `/api/v2.0` berth does not serve: Harbor's 404 body.
async fn unknown_path(uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("{} is not an API of this registry", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {}", uri.path()))
}

/// `GET /api/version`: the API version Harbor clients look for.
pub async fn version() -> impl IntoResponse {
    #[derive(Serialize, schemars::JsonSchema)]
    pub(super) struct Version {
        version: &'static str,
    }
    axum::Json(Version { version: "v2.0" })
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

/// A Harbor API error: status, code and message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// Harbor's code for a status.
    fn code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "BAD_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::FORBIDDEN => "FORBIDDEN",
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
            StatusCode::CONFLICT => "CONFLICT",
            StatusCode::UNPROCESSABLE_ENTITY => "UNPROCESSABLE_ENTITY",
            StatusCode::PRECONDITION_FAILED => "PRECONDITION",
            StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
            _ => "INTERNAL_SERVER_ERROR",
        }
    }
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ErrorBody<'a> {
    errors: [ErrorEntry<'a>; 1],
}

#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct ErrorEntry<'a> {
    code: &'static str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { errors: [ErrorEntry { code: self.code(), message: &self.message }] };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"berth\", charset=\"UTF-8\""));
        }
        resp
    }
}

/// The one translation of service errors into Harbor errors.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let status = match &e {
            ServiceError::Invalid(_)
            | ServiceError::ManifestInvalid(_)
            | ServiceError::DigestInvalid(_)
            | ServiceError::UploadInvalid(_)
            | ServiceError::RangeInvalid { .. }
            | ServiceError::RangeNotSatisfiable { .. } => StatusCode::BAD_REQUEST,
            ServiceError::NotFound(_)
            | ServiceError::NameUnknown(_)
            | ServiceError::ManifestUnknown(_)
            | ServiceError::BlobUnknown(_)
            | ServiceError::UploadUnknown
            | ServiceError::ManifestBlobUnknown(_)
            | ServiceError::NotProxied(_) => StatusCode::NOT_FOUND,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::Upstream(r) if r.kind == crate::remote::ErrorKind::TooManyRequests => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ServiceError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ServiceError::Forbidden(_) | ServiceError::QuotaExceeded(_) => StatusCode::FORBIDDEN,
            ServiceError::PreconditionFailed(_) | ServiceError::Immutable(_) | ServiceError::PolicyViolation(_) => {
                StatusCode::PRECONDITION_FAILED
            }
            ServiceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Backend(p) if p.is(crate::port::ErrorKind::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            ServiceError::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if matches!(e, ServiceError::Backend(_)) {
            tracing::error!(error = %e, "backend failure");
            return Self::new(status, "internal error");
        }
        Self::new(status, e.to_string())
    }
}

/// The authenticated caller of a management request: by its
/// `Authorization` header, else by its portal session (verified, and
/// CSRF-checked, by the session layer of `http::portal`). Bad credentials
/// are a 401, never a silent anonymous request.
pub struct Caller(pub Subject, pub Actor);

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let subject = subject_of(parts, state).await?;
        let actor = crate::http::request_actor(&subject, &parts.headers, &parts.extensions);
        Ok(Self(subject, actor))
    }
}

async fn subject_of(parts: &Parts, state: &Arc<AppState>) -> Result<Subject, ApiError> {
    {
        let value = parts.headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
        if value.is_none()
            && let Some(session) = parts.extensions.get::<Session>()
        {
            // The user is read on every request, so a deleted user or a
            // changed admin flag takes effect at once.
            return match state.registry.user(session.user_id).await {
                Ok(user) => Ok(Subject::User(Arc::new(UserPrincipal::from(&user)))),
                Err(ServiceError::NotFound(_)) => Ok(Subject::Anonymous),
                Err(e) => Err(e.into()),
            };
        }
        match state.auth.authenticate(value).await? {
            Subject::Token(_) => {
                Err(ApiError::new(StatusCode::UNAUTHORIZED, "registry tokens are not accepted by the management API"))
            }
            Subject::User(user)
                if user.name != ADMIN
                    && value.is_some_and(|v| v.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("basic ")))
                    && state.registry.settings().await?.auth_mode == AuthMode::Oidc
                    && !oidc::cli_secret_allowed(&parts.method, parts.uri.path()) =>
            {
                Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "an OIDC user's CLI secret serves registry clients only; sign in to the portal for this",
                ))
            }
            subject => Ok(subject),
        }
    }
}

/// Refused credentials are a 401 that never says whether the account
/// exists; a directory that cannot be asked is a 503.
impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Backend(p) => ServiceError::from(p).into(),
            AuthError::Unavailable(_) => {
                tracing::error!(error = %e, "identity provider unavailable");
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "the identity provider is unavailable")
            }
            AuthError::InvalidCredentials | AuthError::Malformed | AuthError::InvalidToken(_) => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid credentials")
            }
        }
    }
}

fn refusal(decision: Decision) -> Result<(), ApiError> {
    match decision {
        Decision::Allow => Ok(()),
        Decision::Challenge => Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication required")),
        Decision::Deny => Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden")),
    }
}

impl Caller {
    /// The registry, acting as this caller (for the events and the audit
    /// log of the changes it makes).
    pub fn registry(&self, state: &AppState) -> crate::service::Registry {
        state.registry.acting(self.1.clone())
    }

    /// Allows, or fails with 401 (anonymous) or 403.
    pub fn require(&self, perm: Perm, on: On<'_>) -> Result<(), ApiError> {
        refusal(authorize(&self.0, perm, on))
    }

    /// What the caller's permissions in `project` depend on.
    pub async fn access(&self, state: &AppState, project: &Project) -> ApiResult<ProjectAccess> {
        Ok(access_to(&state.registry, &self.0, project).await?)
    }

    /// Allows `perm` in `project`, or fails with 401 or 403.
    pub async fn require_in(&self, state: &AppState, project: &Project, perm: Perm) -> ApiResult<ProjectAccess> {
        let access = self.access(state, project).await?;
        self.require(perm, On::Project(&access))?;
        Ok(access)
    }

    /// Fails with 401 unless the caller signed in.
    pub fn require_signed_in(&self) -> Result<(), ApiError> {
        if self.0.is_authenticated() {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "authentication required"))
        }
    }

    /// The signed-in user (not a robot).
    pub fn user(&self) -> Option<&UserPrincipal> {
        self.0.user()
    }

    pub fn is_sysadmin(&self) -> bool {
        self.0.is_sysadmin()
    }
}

/// Harbor's `q` query: comma-separated `key=value` terms, each value one of
/// `v` (exact), `~v` (fuzzy), `{a b}` (any of), `[min~max]` (range) or
/// `(a b)` (all of, which berth serves only for one value). Unknown keys are
/// the caller's to ignore, as Harbor ignores them.
pub fn parse_q(q: Option<&str>) -> Result<BTreeMap<String, Match>, ApiError> {
    let mut out = BTreeMap::new();
    let Some(q) = q.filter(|q| !q.trim().is_empty()) else { return Ok(out) };
    for term in q.split(',').filter(|t| !t.trim().is_empty()) {
        let (k, v) =
            term.split_once('=').ok_or_else(|| ApiError::bad_request(format!("invalid query term {term:?}")))?;
        let v = v.trim();
        let words = |inner: &str| inner.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let m = if let Some(rest) = v.strip_prefix('~') {
            Match::Fuzzy(rest.to_owned())
        } else if let Some(inner) = v.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            Match::AnyOf(words(inner))
        } else if let Some(inner) = v.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
            match words(inner) {
                w if w.len() == 1 => Match::Exact(w[0].clone()),
                w => Match::AllOf(w),
            }
        } else if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let (min, max) = inner
                .split_once('~')
                .ok_or_else(|| ApiError::bad_request(format!("invalid range {v:?}: use [min~max]")))?;
            let bound = |b: &str| Some(b.trim().to_owned()).filter(|b| !b.is_empty());
            Match::Range { min: bound(min), max: bound(max) }
        } else {
            Match::Exact(v.to_owned())
        };
        out.insert(k.trim().to_owned(), m);
    }
    Ok(out)
}

/// A boolean query parameter (`public`, `with_tag`, `relative`) as Harbor's
/// go-swagger server reads it: any case of `true`, `1`, `yes`, `ok`, `y`,
/// `on`, `selected`, `checked`, `t` or `enabled` is true, anything else
/// false. Clients depend on the case: Python's swagger client (Harbor's own
/// tests, scripts built on harbor-client) sends `public=False`.
pub fn query_bool(v: &str) -> bool {
    ["true", "1", "yes", "ok", "y", "on", "selected", "checked", "t", "enabled"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
}

/// A JSON body, or Harbor's 400 naming what is wrong with it.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let axum::Json(v) =
            axum::Json::<T>::from_request(req, state).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
        Ok(Self(v))
    }
}

/// A numeric path id (`/users/{user_id}`), or Harbor's 400.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(params) =
            axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let (name, raw) = params.last().cloned().unwrap_or_default();
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Self(id)),
            _ => Err(ApiError::bad_request(format!("{name} must be a positive number, got {raw:?}"))),
        }
    }
}

/// `201 Created` with a `Location`.
pub fn created(location: &str) -> ApiResult {
    let loc = HeaderValue::from_str(location).map_err(|_| ApiError::bad_request("bad name in location"))?;
    Ok((StatusCode::CREATED, [(header::LOCATION, loc)]).into_response())
}

/// The number a path parameter holds (`Path<Vec<(String, String)>>`).
pub fn path_number(path: &[(String, String)], name: &str) -> Result<i64, ApiError> {
    path.iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| ApiError::bad_request(format!("{name} must be a number")))
}

/// `201 Created` with a `Location` and a JSON body.
pub fn created_with<T: Serialize>(location: &str, body: &T) -> ApiResult {
    let loc = HeaderValue::from_str(location).map_err(|_| ApiError::bad_request("bad name in location"))?;
    Ok((StatusCode::CREATED, [(header::LOCATION, loc)], axum::Json(body)).into_response())
}

/// RFC 3339 time of a Unix timestamp, as Harbor writes times.
pub fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// The page a listing request asks for: Harbor's `page` and `page_size`
/// (with its defaults and bounds), and the position a `Link` carries.
#[derive(Debug, Clone)]
pub struct Paging(pub PageRequest);

impl Paging {
    pub fn parse(page: Option<&str>, page_size: Option<&str>, cursor: Option<&str>) -> Result<Self, ApiError> {
        let num = |v: Option<&str>, name: &str, default: u64| match v {
            None | Some("") => Ok(default),
            Some(s) => {
                s.parse::<u64>().map_err(|_| ApiError::bad_request(format!("{name} must be a number, got {s:?}")))
            }
        };
        let page = num(page, "page", 1)?.max(1);
        let size = num(page_size, "page_size", 10)?;
        if !(1..=MAX_PAGE_SIZE as u64).contains(&size) {
            return Err(ApiError::bad_request(format!("page_size must be between 1 and {MAX_PAGE_SIZE}")));
        }
        let after = cursor
            .map(|c| {
                B64.decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| ApiError::bad_request("cursor is not one this registry made"))
            })
            .transpose()?;
        Ok(Self(PageRequest { page, size: usize::try_from(size).unwrap_or(MAX_PAGE_SIZE), after, descending: false }))
    }

    /// Applies Harbor's `sort` (`key` or `-key`, first of a comma list) when
    /// it names `key`, the order the list is kept in; the list is
    /// `descending` by default otherwise. Other sort keys are ignored: the
    /// list is served in its own order (documented per listing).
    pub fn sorted(mut self, sort: Option<&str>, key: &str, descending: bool) -> Self {
        let first = sort.and_then(|s| s.split(',').next()).map(str::trim).unwrap_or_default();
        self.0.descending = match first.strip_prefix('-') {
            Some(k) if k == key => true,
            None if first == key => false,
            _ => descending,
        };
        self
    }

    /// A page of a listing as Harbor answers it: the items, `X-Total-Count`
    /// and a `Link` to the previous and next pages (`path` under the API
    /// prefix, `query_rest` the listing's other parameters).
    pub fn respond<T: Serialize>(&self, path: &str, query_rest: &[(&str, &str)], listing: Listing<T>) -> Response {
        let req = &self.0;
        let (next, total) = (listing.next, listing.total);
        let mut resp = axum::Json(&listing.items).into_response();
        let h = resp.headers_mut();
        h.insert("x-total-count", HeaderValue::from(total));
        let link = |page: u64, cursor: Option<&str>, rel: &str| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("page", &page.to_string()).append_pair("page_size", &req.size.to_string());
            for (k, v) in query_rest {
                q.append_pair(k, v);
            }
            if let Some(c) = cursor {
                q.append_pair("cursor", &B64.encode(c));
            }
            format!("<{PREFIX}{path}?{}>; rel=\"{rel}\"", q.finish())
        };
        let mut links = Vec::new();
        let before = req.page.saturating_sub(1).saturating_mul(req.size as u64);
        if req.page > 1 && before > 0 {
            links.push(link(req.page - 1, None, "prev"));
        }
        if next.is_some() {
            links.push(link(req.page + 1, next.as_deref(), "next"));
        }
        if !links.is_empty()
            && let Ok(v) = HeaderValue::from_str(&links.join(" , "))
        {
            h.insert(header::LINK, v);
        }
        resp
    }
}
