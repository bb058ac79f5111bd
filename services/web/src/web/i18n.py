"""English and Spanish: every word the pages show, and which language a request gets.

The choice, first that applies: ``?lang=`` (the switch in the header; remembered in a cookie),
the remembered choice, the page's own preference (the patient's language on the status page),
then ``Accept-Language``; English otherwise."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

LANGUAGES = ("en", "es")
LANGUAGE_NAMES = {"en": "English", "es": "Español"}
COOKIE = "web_lang"

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "app": "Closed Loop",
        "skip": "Skip to main content",
        "language": "Language",
        "nav": "Main",
        "home": "Home",
        "inbox": "Inbox",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "signed_in_as": "Signed in: {role}",
        "home_title": "Closed Loop",
        "home_lead": (
            "Closed-loop referrals to community organizations: food, housing, transport, "
            "legal help."
        ),
        "home_staff": "Community organization staff: sign in to see your referrals.",
        "home_patient": (
            "Patients: open the link in the message you received to see your referral."
        ),
        # the patient status page
        "status_title": "Your referral",
        "status_lead": "This page shows where your referral stands. No sign-in is needed.",
        "what": "What was requested",
        "to_whom": "Sent to",
        "address": "Address",
        "phone": "Phone",
        "hours": "Hours",
        "website": "Website",
        "current_status": "Current status",
        "since": "Last update: {date}",
        "reason": "Reason: {reason}",
        "outcome": "Outcome: {outcome}",
        "unknown": "Not given",
        "link_expired_title": "This link has expired",
        "link_expired": (
            "For your privacy, links to a referral work for a limited time. Ask the clinic "
            "that referred you for a new link."
        ),
        "link_invalid_title": "This link is not valid",
        "link_invalid": (
            "The link is incomplete or was changed. Copy the whole link from your message, or "
            "ask the clinic that referred you for a new one."
        ),
        "survey_title": "Tell us how it went",
        "survey_lead": "A few short questions. Your answers help improve the service.",
        "optional": "(optional)",
        "yes": "Yes",
        "no": "No",
        "send": "Send",
        "survey_thanks": "Thank you. Your answers were saved.",
        "survey_done": "You already answered this survey. Thank you.",
        "survey_missing": "Please answer the questions not marked optional.",
        "survey_refused": "Your answers could not be saved: {detail}",
        "survey_unavailable": "The questions cannot be shown right now. Try again later.",
        # the loop metrics (staff)
        "measures": "Loop metrics",
        "measures_title": "Loop metrics",
        "measures_lead": (
            "How referrals fared: sent, answered, completed, and how fast. You see your "
            "organization's figures only; an administrator sees every organization's."
        ),
        "period": "Period",
        "months": "Months",
        "years": "Years",
        "download_csv": "Download the figures (CSV)",
        "totals": "Referrals sent in {period}",
        "col_figure": "Figure",
        "col_value": "Value",
        "fig_sent": "Sent",
        "fig_accepted": "Accepted",
        "fig_declined": "Declined",
        "fig_completed": "Completed",
        "fig_closure-rate": "Closure rate (completed / sent)",
        "fig_closure-rate_short": "Closure rate",
        "fig_time-to-accept.median": "Time to accept, median",
        "fig_time-to-accept.p90": "Time to accept, 90th percentile",
        "hidden": "hidden",
        "suppressed_note": (
            "To protect privacy, counts from 1 to {max} are shown as “<{min}”, and "
            "figures worked out from so small a group as “hidden”."
        ),
        "by_cbo": "By community organization",
        "col_cbo": "Organization",
        "no_figures": "No referrals were sent in this period.",
        "charts": "Charts",
        "chart_sent_cbo": "Referrals sent, by community organization",
        "chart_sent_month": "Referrals sent, by month",
        "chart_closure-rate_category": "Closure rate, by service category",
        "chart_unavailable": "This chart cannot be shown right now.",
        "voice_title": "The patients' voice",
        "voice_lead": (
            "Answers to the questions patients are asked after a completed referral, all so far."
        ),
        "voice_responses": "responses",
        "col_question": "Question",
        "col_answer": "Answer",
        "col_count": "Answers",
        "no_voice": "No answers yet.",
        # the CBO inbox
        "inbox_title": "Incoming referrals",
        "show": "Show",
        "show_new": "New",
        "show_open": "Open",
        "show_closed": "Closed",
        "show_all": "All",
        "apply": "Apply",
        "col_patient": "Patient",
        "col_received": "Received",
        "col_status": "Status",
        "col_open": "Referral",
        "open_referral": "Open",
        "no_referrals": "No referrals here.",
        "referral_title": "Referral",
        "patient": "Patient",
        "name": "Name",
        "birth_date": "Date of birth",
        "preferred_language": "Language",
        "zip": "ZIP code",
        "request": "Request",
        "actions": "What to do",
        "no_actions": "This referral is closed: nothing more to do.",
        "act_accept": "Accept",
        "act_decline": "Decline",
        "act_start": "Start service",
        "act_resume": "Resume",
        "act_hold": "Put on hold",
        "act_complete": "Complete",
        "act_cancel": "Cancel referral",
        "label_decline": "Reason for declining (required)",
        "label_hold": "Reason for the hold (required)",
        "label_cancel": "Reason for cancelling (required)",
        "label_complete": "What was delivered (required)",
        "done_accept": "The referral was accepted.",
        "done_decline": "The referral was declined.",
        "done_start": "The service has started.",
        "done_resume": "The service has resumed.",
        "done_hold": "The referral is on hold.",
        "done_complete": "The referral was completed. The clinic sees the outcome.",
        "done_cancel": "The referral was cancelled.",
        "needs_reason": "Give a reason for this change.",
        "needs_outcome": "Say what was delivered.",
        "back_to_inbox": "Back to the inbox",
        "role_cbo-staff": "community organization staff",
        "role_admin": "administrator",
        "role_clinician": "clinician",
        "role_case-manager": "case manager",
        # the clinician's app
        "clinician_title": "Social care referrals",
        "banner": "Patient",
        "sdoh": "Social needs on record",
        "find_title": "Find help",
        "need": "Need",
        "near_zip": "Near ZIP code",
        "any_language": "Any language",
        "speaks": "Language spoken",
        "open_now": "Open now",
        "eligible_age": "Patient's age (years)",
        "eligible_age_hint": "Only services that accept this age",
        "bad_age": "The age must be a whole number of years from 0 to 120.",
        "eligibility_is": "Who it is for: {text}",
        "map_label": "Map of the results (the list below says the same)",
        "search": "Search",
        "results": "Services found",
        "no_results": "No service matches. Try another need or ZIP code, or leave out a filter.",
        "refer": "Refer",
        "why_nearby": "Nearby",
        "why_coverage-area": "Serves this area",
        "why_virtual": "Virtual",
        "referrals": "Referrals",
        "no_referrals_yet": "No referrals for this patient yet.",
        "sent_ok": "The referral was sent.",
        "step": "Step {n} of 3",
        "refer_title": "Refer to {name}",
        "consent": "The patient agrees to share this referral with the organization.",
        "consent_legend": "Consent",
        "note": "Note for the organization (optional)",
        "review": "Review",
        "review_title": "Review and send",
        "send_referral": "Send referral",
        "service": "Service",
        "organization": "Organization",
        "needs_consent": "The referral needs the patient's consent.",
        "bad_category": "Choose a need from the list.",
        "bad_zip": "Give a 5-digit ZIP code.",
        "launch_refused": (
            "This launch cannot be completed: the EHR is not one this app is set up for, or "
            "the launch link is incomplete. Launch the app again from the EHR."
        ),
        "no_patient": "No patient is in context. Launch the app from the patient's chart.",
        "cat_food-insecurity": "Food",
        "cat_housing-instability": "Housing",
        "cat_transportation-insecurity": "Transportation",
        "cat_financial-insecurity": "Money",
        "cat_utility-insecurity": "Utilities",
        "cat_social-connection": "Social connection",
        # the case manager's worklist
        "worklist": "Worklist",
        "worklist_title": "Referrals sent",
        "col_sent": "Sent",
        "col_to": "To",
        "stalled": "No answer for {days} days",
        "stalled_count": "{n} referrals have had no answer for a while: they are listed first.",
        "home_managers": "Case managers and clinicians: see the referrals your organization sent.",
        "timeline": "Timeline",
        # a CBO's capacity
        "capacity": "Capacity",
        "listing_title": "Your listing: {name}",
        "listing_lead": "What clinicians see about this service when they look for help.",
        "listing_done": "Saved. Directory search shows it now.",
        "listing_edit": "Edit listing",
        "back_to_listings": "Back to your listings",
        "listing_name": "Service name",
        "listing_comment": "Description",
        "listing_phone": "Phone",
        "listing_email": "Email",
        "listing_url": "Web site",
        "listing_categories": "Kinds of help (SDOH categories)",
        "listing_languages": "Languages spoken",
        "listing_languages_hint": "Language codes separated by commas, e.g. en, es",
        "listing_eligibility": "Who can get this service (eligibility)",
        "listing_hours": "Opening hours",
        "listing_opens": "Opens at",
        "listing_closes": "Closes at",
        "listing_conflict": (
            "Someone else changed this listing in the meantime. Reload the page to see their "
            "changes, then make yours again."
        ),
        "day_mon": "Monday",
        "day_tue": "Tuesday",
        "day_wed": "Wednesday",
        "day_thu": "Thursday",
        "day_fri": "Friday",
        "day_sat": "Saturday",
        "day_sun": "Sunday",
        "capacity_title": "Taking referrals?",
        "capacity_lead": "Clinicians see this next to your services when they look for help.",
        "capacity_of": "Capacity of {name}",
        "cap_capacity": "Accepting referrals",
        "cap_waitlist": "Waitlist",
        "cap_no-capacity": "Full: not taking referrals",
        "cap_additional-assessment-required": "Assessment needed first",
        "save": "Save",
        "capacity_done": "Saved. Directory search shows it now.",
        "no_listings": "Your organization has no listing in the directory.",
        # statuses of a referral Task, in words a patient understands
        "st_draft": "Not sent yet",
        "st_requested": "Sent, waiting for an answer",
        "st_received": "Received",
        "st_accepted": "Accepted: the organization will contact you",
        "st_rejected": "Declined",
        "st_cancelled": "Cancelled",
        "st_on-hold": "On hold",
        "st_in-progress": "In progress",
        "st_completed": "Completed",
        "st_failed": "Could not be completed",
        "st_entered-in-error": "Withdrawn (sent by mistake)",
        # errors
        "error_title": "Something went wrong",
        "error_generic": "The page could not be shown. Try again in a moment.",
        "error_reference": "Reference: {request_id}",
        "not_found_title": "Page not found",
        "not_found": "There is nothing at this address.",
        "api_unavailable": ("A service this page needs is not answering. Try again in a moment."),
        "api_refused": "You are not allowed to do this.",
        "api_not_found": "This referral was not found, or you may not see it.",
        "api_conflict": (
            "This referral changed in the meantime, or cannot move to that status. "
            "Reload the page and try again."
        ),
        "api_invalid": "The request was refused: {detail}",
        "csrf_title": "The form expired",
        "csrf": (
            "The form could not be checked (it may have expired). Go back, reload and try again."
        ),
        "signed_out": "Your sign-in expired. Sign in again.",
        "login_failed": "The sign-in could not be completed. Try again.",
        "back": "Back",
    },
    "es": {
        "app": "Closed Loop",
        "skip": "Saltar al contenido principal",
        "language": "Idioma",
        "nav": "Principal",
        "home": "Inicio",
        "inbox": "Bandeja de entrada",
        "sign_in": "Iniciar sesión",
        "sign_out": "Cerrar sesión",
        "signed_in_as": "Sesión iniciada: {role}",
        "home_title": "Closed Loop",
        "home_lead": (
            "Remisiones de ciclo cerrado a organizaciones comunitarias: alimentos, vivienda, "
            "transporte, ayuda legal."
        ),
        "home_staff": (
            "Personal de organizaciones comunitarias: inicie sesión para ver sus remisiones."
        ),
        "home_patient": ("Pacientes: abra el enlace del mensaje que recibió para ver su remisión."),
        "status_title": "Su remisión",
        "status_lead": (
            "Esta página muestra el estado de su remisión. No necesita iniciar sesión."
        ),
        "what": "Qué se solicitó",
        "to_whom": "Enviada a",
        "address": "Dirección",
        "phone": "Teléfono",
        "hours": "Horario",
        "website": "Sitio web",
        "current_status": "Estado actual",
        "since": "Última actualización: {date}",
        "reason": "Motivo: {reason}",
        "outcome": "Resultado: {outcome}",
        "unknown": "No indicado",
        "link_expired_title": "Este enlace ha caducado",
        "link_expired": (
            "Para proteger su privacidad, los enlaces a una remisión funcionan por un tiempo "
            "limitado. Pida un nuevo enlace a la clínica que le remitió."
        ),
        "link_invalid_title": "Este enlace no es válido",
        "link_invalid": (
            "El enlace está incompleto o fue modificado. Copie el enlace completo de su "
            "mensaje, o pida uno nuevo a la clínica que le remitió."
        ),
        "survey_title": "Cuéntenos cómo le fue",
        "survey_lead": "Unas preguntas breves. Sus respuestas ayudan a mejorar el servicio.",
        "optional": "(opcional)",
        "yes": "Sí",
        "no": "No",
        "send": "Enviar",
        "survey_thanks": "Gracias. Sus respuestas se guardaron.",
        "survey_done": "Ya respondió esta encuesta. Gracias.",
        "survey_missing": "Por favor responda las preguntas que no dicen opcional.",
        "survey_refused": "No se pudieron guardar sus respuestas: {detail}",
        "survey_unavailable": "Las preguntas no se pueden mostrar ahora. Inténtelo más tarde.",
        "measures": "Métricas",
        "measures_title": "Métricas de las remisiones",
        "measures_lead": (
            "Cómo les fue a las remisiones: enviadas, respondidas, completadas, y en cuánto "
            "tiempo. Usted ve solo las cifras de su organización; un administrador ve las de "
            "todas."
        ),
        "period": "Periodo",
        "months": "Meses",
        "years": "Años",
        "download_csv": "Descargar las cifras (CSV)",
        "totals": "Remisiones enviadas en {period}",
        "col_figure": "Cifra",
        "col_value": "Valor",
        "fig_sent": "Enviadas",
        "fig_accepted": "Aceptadas",
        "fig_declined": "Rechazadas",
        "fig_completed": "Completadas",
        "fig_closure-rate": "Tasa de cierre (completadas / enviadas)",
        "fig_closure-rate_short": "Tasa de cierre",
        "fig_time-to-accept.median": "Tiempo hasta aceptar, mediana",
        "fig_time-to-accept.p90": "Tiempo hasta aceptar, percentil 90",
        "hidden": "oculto",
        "suppressed_note": (
            "Para proteger la privacidad, los recuentos de 1 a {max} se muestran como "
            "«<{min}», y las cifras calculadas con un grupo tan pequeño como "
            "«oculto»."
        ),
        "by_cbo": "Por organización comunitaria",
        "col_cbo": "Organización",
        "no_figures": "No se enviaron remisiones en este periodo.",
        "charts": "Gráficos",
        "chart_sent_cbo": "Remisiones enviadas, por organización comunitaria",
        "chart_sent_month": "Remisiones enviadas, por mes",
        "chart_closure-rate_category": "Tasa de cierre, por categoría de servicio",
        "chart_unavailable": "Este gráfico no se puede mostrar ahora.",
        "voice_title": "La voz de los pacientes",
        "voice_lead": (
            "Respuestas a las preguntas que se hacen a los pacientes después de una remisión "
            "completada, todas hasta hoy."
        ),
        "voice_responses": "respuestas",
        "col_question": "Pregunta",
        "col_answer": "Respuesta",
        "col_count": "Respuestas",
        "no_voice": "Todavía no hay respuestas.",
        "inbox_title": "Remisiones recibidas",
        "show": "Mostrar",
        "show_new": "Nuevas",
        "show_open": "Abiertas",
        "show_closed": "Cerradas",
        "show_all": "Todas",
        "apply": "Aplicar",
        "col_patient": "Paciente",
        "col_received": "Recibida",
        "col_status": "Estado",
        "col_open": "Remisión",
        "open_referral": "Abrir",
        "no_referrals": "No hay remisiones aquí.",
        "referral_title": "Remisión",
        "patient": "Paciente",
        "name": "Nombre",
        "birth_date": "Fecha de nacimiento",
        "preferred_language": "Idioma",
        "zip": "Código postal",
        "request": "Solicitud",
        "actions": "Qué hacer",
        "no_actions": "Esta remisión está cerrada: no hay nada más que hacer.",
        "act_accept": "Aceptar",
        "act_decline": "Rechazar",
        "act_start": "Iniciar servicio",
        "act_resume": "Reanudar",
        "act_hold": "Poner en espera",
        "act_complete": "Completar",
        "act_cancel": "Cancelar remisión",
        "label_decline": "Motivo del rechazo (obligatorio)",
        "label_hold": "Motivo de la espera (obligatorio)",
        "label_cancel": "Motivo de la cancelación (obligatorio)",
        "label_complete": "Qué se entregó (obligatorio)",
        "done_accept": "La remisión fue aceptada.",
        "done_decline": "La remisión fue rechazada.",
        "done_start": "El servicio comenzó.",
        "done_resume": "El servicio se reanudó.",
        "done_hold": "La remisión está en espera.",
        "done_complete": "La remisión se completó. La clínica ve el resultado.",
        "done_cancel": "La remisión fue cancelada.",
        "needs_reason": "Indique un motivo para este cambio.",
        "needs_outcome": "Indique qué se entregó.",
        "back_to_inbox": "Volver a la bandeja de entrada",
        "role_cbo-staff": "personal de organización comunitaria",
        "role_admin": "administrador",
        "role_clinician": "clínico",
        "role_case-manager": "gestor de casos",
        "clinician_title": "Remisiones de atención social",
        "banner": "Paciente",
        "sdoh": "Necesidades sociales registradas",
        "find_title": "Buscar ayuda",
        "need": "Necesidad",
        "near_zip": "Cerca del código postal",
        "any_language": "Cualquier idioma",
        "speaks": "Idioma hablado",
        "open_now": "Abierto ahora",
        "eligible_age": "Edad del paciente (años)",
        "eligible_age_hint": "Solo servicios que aceptan esta edad",
        "bad_age": "La edad debe ser un número entero de años entre 0 y 120.",
        "eligibility_is": "Para quién es: {text}",
        "map_label": "Mapa de los resultados (la lista de abajo dice lo mismo)",
        "search": "Buscar",
        "results": "Servicios encontrados",
        "no_results": (
            "Ningún servicio coincide. Pruebe otra necesidad o código postal, o quite un filtro."
        ),
        "refer": "Remitir",
        "why_nearby": "Cerca",
        "why_coverage-area": "Atiende esta zona",
        "why_virtual": "Virtual",
        "referrals": "Remisiones",
        "no_referrals_yet": "Aún no hay remisiones para este paciente.",
        "sent_ok": "La remisión fue enviada.",
        "step": "Paso {n} de 3",
        "refer_title": "Remitir a {name}",
        "consent": "El paciente acepta compartir esta remisión con la organización.",
        "consent_legend": "Consentimiento",
        "note": "Nota para la organización (opcional)",
        "review": "Revisar",
        "review_title": "Revisar y enviar",
        "send_referral": "Enviar remisión",
        "service": "Servicio",
        "organization": "Organización",
        "needs_consent": "La remisión necesita el consentimiento del paciente.",
        "bad_category": "Elija una necesidad de la lista.",
        "bad_zip": "Indique un código postal de 5 dígitos.",
        "launch_refused": (
            "No se puede completar el inicio: el EHR no es uno para el que esta aplicación está "
            "configurada, o el enlace está incompleto. Abra la aplicación de nuevo desde el EHR."
        ),
        "no_patient": (
            "No hay un paciente en contexto. Abra la aplicación desde la ficha del paciente."
        ),
        "cat_food-insecurity": "Alimentos",
        "cat_housing-instability": "Vivienda",
        "cat_transportation-insecurity": "Transporte",
        "cat_financial-insecurity": "Dinero",
        "cat_utility-insecurity": "Servicios públicos",
        "cat_social-connection": "Conexión social",
        "worklist": "Lista de trabajo",
        "worklist_title": "Remisiones enviadas",
        "col_sent": "Enviada",
        "col_to": "A",
        "stalled": "Sin respuesta desde hace {days} días",
        "stalled_count": ("{n} remisiones llevan tiempo sin respuesta: aparecen primero."),
        "home_managers": (
            "Gestores de casos y clínicos: vean las remisiones que envió su organización."
        ),
        "timeline": "Cronología",
        "capacity": "Capacidad",
        "listing_title": "Su servicio: {name}",
        "listing_lead": "Lo que ven los clínicos de este servicio cuando buscan ayuda.",
        "listing_done": "Guardado. La búsqueda del directorio ya lo muestra.",
        "listing_edit": "Editar servicio",
        "back_to_listings": "Volver a sus servicios",
        "listing_name": "Nombre del servicio",
        "listing_comment": "Descripción",
        "listing_phone": "Teléfono",
        "listing_email": "Correo electrónico",
        "listing_url": "Sitio web",
        "listing_categories": "Tipos de ayuda (categorías SDOH)",
        "listing_languages": "Idiomas que se hablan",
        "listing_languages_hint": "Códigos de idioma separados por comas, p. ej. en, es",
        "listing_eligibility": "Quién puede recibir este servicio (requisitos)",
        "listing_hours": "Horario",
        "listing_opens": "Abre a las",
        "listing_closes": "Cierra a las",
        "listing_conflict": (
            "Otra persona cambió este servicio mientras tanto. Recargue la página para ver sus "
            "cambios y vuelva a hacer los suyos."
        ),
        "day_mon": "Lunes",
        "day_tue": "Martes",
        "day_wed": "Miércoles",
        "day_thu": "Jueves",
        "day_fri": "Viernes",
        "day_sat": "Sábado",
        "day_sun": "Domingo",
        "capacity_title": "¿Acepta remisiones?",
        "capacity_lead": "Los clínicos ven esto junto a sus servicios cuando buscan ayuda.",
        "capacity_of": "Capacidad de {name}",
        "cap_capacity": "Acepta remisiones",
        "cap_waitlist": "Lista de espera",
        "cap_no-capacity": "Completo: no acepta remisiones",
        "cap_additional-assessment-required": "Requiere evaluación previa",
        "save": "Guardar",
        "capacity_done": "Guardado. La búsqueda del directorio ya lo muestra.",
        "no_listings": "Su organización no tiene servicios en el directorio.",
        "st_draft": "Aún no enviada",
        "st_requested": "Enviada, esperando respuesta",
        "st_received": "Recibida",
        "st_accepted": "Aceptada: la organización se pondrá en contacto con usted",
        "st_rejected": "Rechazada",
        "st_cancelled": "Cancelada",
        "st_on-hold": "En espera",
        "st_in-progress": "En curso",
        "st_completed": "Completada",
        "st_failed": "No se pudo completar",
        "st_entered-in-error": "Retirada (enviada por error)",
        "error_title": "Algo salió mal",
        "error_generic": "No se pudo mostrar la página. Inténtelo de nuevo en un momento.",
        "error_reference": "Referencia: {request_id}",
        "not_found_title": "Página no encontrada",
        "not_found": "No hay nada en esta dirección.",
        "api_unavailable": (
            "Un servicio que esta página necesita no responde. Inténtelo de nuevo en un momento."
        ),
        "api_refused": "No tiene permiso para hacer esto.",
        "api_not_found": "No se encontró esta remisión, o no tiene permiso para verla.",
        "api_conflict": (
            "Esta remisión cambió mientras tanto, o no puede pasar a ese estado. "
            "Vuelva a cargar la página e inténtelo de nuevo."
        ),
        "api_invalid": "La solicitud fue rechazada: {detail}",
        "csrf_title": "El formulario caducó",
        "csrf": (
            "No se pudo verificar el formulario (puede haber caducado). Vuelva atrás, recargue "
            "la página e inténtelo de nuevo."
        ),
        "signed_out": "Su sesión caducó. Inicie sesión de nuevo.",
        "login_failed": "No se pudo completar el inicio de sesión. Inténtelo de nuevo.",
        "back": "Volver",
    },
}


def supported(code: str | None) -> str | None:
    """``es-MX`` -> ``es``; None when the language is not one of ours."""
    base = (code or "").strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The best of our languages in an ``Accept-Language`` header (q-values honoured)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = supported(tag)
        if lang and q > 0:
            ranked.append((-q, i, lang))
    return min(ranked)[2] if ranked else None


def choose(request: Request, preferred: str | None = None) -> str:
    """The language for this request (see the module's docstring for the order)."""
    return (
        supported(request.query_params.get("lang"))
        or supported(request.cookies.get(COOKIE))
        or supported(preferred)
        or from_accept_language(request.headers.get("accept-language"))
        or "en"
    )


def translator(lang: str) -> Callable[..., str]:
    """``t("since", date=...)``: the text in ``lang``, English when a key has no translation."""
    texts, fallback = TEXT.get(lang, TEXT["en"]), TEXT["en"]

    def t(key: str, **values: object) -> str:
        text = texts.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t
