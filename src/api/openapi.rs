//! The OpenAPI 3 document, generated from the handlers' annotations, served at `/api/v1/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, assist, attachments, auth, kb};

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
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
        kb::create_article, kb::list_articles, kb::get_article, kb::update_article, kb::delete_article,
        kb::list_categories, kb::article_from_ticket,
        attachments::upload_ticket, attachments::list_ticket, attachments::upload_article,
        attachments::list_article, attachments::download,
    ),
    components(schemas(super::ErrorBody, super::ErrorDetail,
        crate::kb::Article, crate::kb::NewArticle, crate::kb::ArticleUpdate, crate::kb::ArticlePage,
        crate::kb::CategoryCount, crate::kb::Visibility, kb::TicketArticleRequest,
        crate::attachments::Attachment, crate::attachments::OwnerKind))
)]
pub struct ApiDoc;

/// The document as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub(crate) async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
