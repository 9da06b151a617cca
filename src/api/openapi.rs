//! The OpenAPI 3 document, generated from the handlers' annotations, served at `/api/v1/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, assist, attachments, auth, kb, meetings, notify, rtc, tickets};

struct Security;

/// Error answers every operation may give, added to each operation that does not list them itself: any
/// request may be malformed (400: a path or query parameter of the wrong type), unauthenticated (401), or
/// fail on the server (500); one with a body may be too large (413), not JSON (415) or not valid (422).
fn add_common_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{RefOr, ResponseBuilder};
    let error = || -> RefOr<utoipa::openapi::Response> {
        ResponseBuilder::new()
            .description("an error: `{\"error\": {\"code\", \"message\"}}`")
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
            .into()
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let public = matches!(
            path.as_str(),
            "/healthz" | "/readyz" | "/api/v1/auth/login" | "/api/v1/rtc/{peer}"
        );
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in ops.into_iter().flatten() {
            let has_body = op.request_body.is_some();
            let mut codes = vec!["400", "408", "500"];
            if !public {
                // 403 also answers a user whose first-login setup is not done (`setup_required`).
                codes.extend(["401", "403"]);
            }
            if has_body {
                codes.extend(["413", "415"]);
            }
            // Bodies and query strings are validated (`validation_failed`).
            codes.push("422");
            if path.contains('{') {
                codes.push("404");
            }
            for c in codes {
                op.responses
                    .responses
                    .entry(c.to_string())
                    .or_insert_with(error);
            }
        }
    }
}

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        add_common_errors(doc);
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a login session token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "code_or_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "the secret of the HELLO mode named by `as`: an authorization or meeting code, a join \
                         token or a resume token (docs/PROTOCOL.md section 13.1)",
                    ))
                    .build(),
            ),
        );
        c.add_security_scheme(
            "operator_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("the service credential (data/operator.key)"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "assist-relay API", description = "Tickets, accounts, knowledge base and remote-assist sessions."),
    modifiers(&Security),
    paths(
        super::healthz, super::readyz,
        assist::create_session, assist::get_session, assist::end_session,
        auth::login, auth::logout, auth::me, auth::change_password, auth::bind_phone, auth::verify_phone,
        admin::list_users, admin::create_user, admin::get_user, admin::update_user, admin::reset_password,
        admin::get_rules, admin::put_rules, admin::outbox, admin::list_devices, admin::create_device,
        tickets::create_ticket, tickets::list_tickets, tickets::get_ticket, tickets::approve_ticket, tickets::assign_ticket, tickets::set_ticket_status,
        tickets::list_messages, tickets::add_message, tickets::list_records, tickets::add_record, tickets::ticket_audit,
        tickets::assist_from_ticket,
        notify::list_notifications, notify::mark_notification_read, notify::stream_notifications,
        kb::create_article, kb::list_articles, kb::get_article, kb::update_article, kb::delete_article,
        kb::list_categories, kb::article_from_ticket,
        attachments::upload_ticket, attachments::list_ticket, attachments::upload_article,
        attachments::list_article, attachments::download,
        meetings::create_meeting, meetings::list_meetings, meetings::get_meeting, meetings::join_token,
        meetings::set_recording, meetings::write_minutes, meetings::end_meeting,
        rtc::connect, rtc::disconnect,
    ),
    components(schemas(super::ErrorBody, super::ErrorDetail,
        crate::kb::Article, crate::kb::NewArticle, crate::kb::ArticleUpdate, crate::kb::ArticlePage,
        crate::kb::CategoryCount, crate::kb::Visibility, kb::TicketArticleRequest,
        crate::attachments::Attachment, crate::attachments::OwnerKind,
        crate::meetings::MeetingState, meetings::NewMeetingRequest, meetings::MeetingView,
        meetings::CreatedMeeting, meetings::RecordingInfo, meetings::JoinRole, meetings::JoinToken,
        meetings::RecordingRequest, meetings::RecordingStatus, meetings::MinutesRequest,
        meetings::MinutesCreated, rtc::RtcMode))
)]
pub struct ApiDoc;

/// The document as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
