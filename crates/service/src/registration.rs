//! RFC 7591 dynamic client registration: a client registers itself, without an account. The
//! rules are core's ([`gatehouse_core::oauth::registration`]); this stores the outcome as an
//! app without an owner, pending (`review`) or approved at once (`open`), and tells the admins
//! about a pending one. The HTTP layer limits how often one address may do it.

use crate::apps::CreatedApp;
use crate::settings::RegistrationMode;
use crate::{notices, Gatehouse, ServiceError};
use gatehouse_core::application::{AppStatus, Application, Registration, UniqueName};
use gatehouse_core::ids::ClientId;
use gatehouse_core::oauth::registration::{
    ClientMetadata, ClientMetadataRequest, RegistrationError,
};
use rand::rngs::OsRng;

/// The audit log's actor for a self-registration.
pub const REGISTRATION_ACTOR: &str = "dynamic_registration";

/// A registration that was refused or could not be done.
#[derive(Debug)]
pub enum RegisterFailure {
    /// Registration is off.
    Off,
    /// The metadata broke a rule (answered 400 with its RFC 7591 error).
    Invalid(RegistrationError),
    /// Storing failed.
    Service(ServiceError),
}

impl From<ServiceError> for RegisterFailure {
    fn from(e: ServiceError) -> Self {
        Self::Service(e)
    }
}

/// A registered client: the app, its secret when confidential, and the metadata as registered.
#[derive(Debug)]
pub struct RegisteredClient {
    /// The stored app and its first secret.
    pub created: CreatedApp,
    /// What was registered, for the answer.
    pub metadata: ClientMetadata,
}

impl Gatehouse {
    /// Whether the registration endpoint is served.
    pub fn registration_enabled(&self) -> bool {
        self.settings.registration.mode != RegistrationMode::Off
    }

    /// Registers a client from its metadata (RFC 7591 §3.1).
    pub async fn register_client(
        &self,
        request: &ClientMetadataRequest,
    ) -> Result<RegisteredClient, RegisterFailure> {
        let settings = &self.settings.registration;
        let status = match settings.mode {
            RegistrationMode::Off => return Err(RegisterFailure::Off),
            RegistrationMode::Review => AppStatus::Pending,
            RegistrationMode::Open => AppStatus::Approved,
        };
        let metadata = ClientMetadata::validate(request, &settings.scopes)
            .map_err(RegisterFailure::Invalid)?;
        let now = self.clock.now();
        let client_type = metadata.token_endpoint_auth_method.client_type();
        let app = Application {
            client_id: ClientId::generate(&mut OsRng),
            owner_id: None,
            registration: Registration::Dynamic,
            auto_approved_at: (status == AppStatus::Approved).then_some(now),
            client_uri: metadata.client_uri.clone(),
            logo_uri: metadata.logo_uri.clone(),
            name: metadata.client_name.clone(),
            unique_name: UniqueName::from_stored(String::new()),
            scopes: metadata.scopes.clone(),
            redirect_uris: metadata.redirect_uris.clone(),
            client_type,
            status,
            status_reason: None,
            created_at: now,
            updated_at: now,
        };
        let secret = match client_type {
            gatehouse_core::application::ClientType::Confidential => {
                Some(self.new_client_secret(&app.client_id))
            }
            gatehouse_core::application::ClientType::Public => None,
        };
        let created = self.insert_app(REGISTRATION_ACTOR, app, secret).await?;
        if status == AppStatus::Pending {
            self.tell_admins_of_registration(&created.app).await;
        }
        Ok(RegisteredClient { created, metadata })
    }

    async fn tell_admins_of_registration(&self, app: &Application) {
        let admins = match self.store.list_admins().await {
            Ok(admins) => admins,
            Err(e) => {
                tracing::warn!(error = %e, client_id = %app.client_id, "admins not found; registration not mailed to them");
                return;
            }
        };
        let base = self.public_base();
        for admin in admins {
            let mail = notices::registered_app_to_review(&admin.email, &base, app);
            self.send_mail(mail).await;
        }
    }
}
