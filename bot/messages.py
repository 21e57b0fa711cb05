"""Built-in texts the bot says when a script does not say otherwise, per language.

A script overrides any of them under `messages:` by key. Texts may use `{placeholders}` filled
from a rejection's params (see bot/answers) and are looked up in the conversation's language,
then English.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_MESSAGES: Mapping[str, Mapping[str, str]] = {
    # Rejected answers, by bot.answers code.
    "empty": {
        "en": "Could you type your answer?",
        "es": "¿Podrías escribir tu respuesta?",
        "fr": "Pouvez-vous écrire votre réponse ?",
        "de": "Könnten Sie Ihre Antwort eingeben?",
        "pt": "Pode escrever a sua resposta?",
    },
    "text_only": {
        "en": "Sorry, I can only read text here.",
        "es": "Lo siento, aquí solo puedo leer texto.",
        "fr": "Désolé, je ne peux lire que du texte ici.",
        "de": "Entschuldigung, ich kann hier nur Text lesen.",
        "pt": "Desculpe, aqui só consigo ler texto.",
    },
    "too_short": {
        "en": "That's a bit short: at least {min} characters, please.",
        "es": "Es un poco corto: al menos {min} caracteres, por favor.",
        "fr": "C'est un peu court : au moins {min} caractères, s'il vous plaît.",
        "de": "Das ist etwas kurz: bitte mindestens {min} Zeichen.",
        "pt": "É um pouco curto: pelo menos {min} caracteres, por favor.",
    },
    "too_long": {
        "en": "That's a bit long: at most {max} characters, please.",
        "es": "Es un poco largo: como máximo {max} caracteres, por favor.",
        "fr": "C'est un peu long : {max} caractères au maximum, s'il vous plaît.",
        "de": "Das ist etwas lang: bitte höchstens {max} Zeichen.",
        "pt": "É um pouco longo: no máximo {max} caracteres, por favor.",
    },
    "pattern": {
        "en": "That doesn't look right. Could you check it?",
        "es": "Eso no parece correcto. ¿Podrías revisarlo?",
        "fr": "Cela ne semble pas correct. Pouvez-vous vérifier ?",
        "de": "Das sieht nicht richtig aus. Könnten Sie es prüfen?",
        "pt": "Isso não parece correto. Pode verificar?",
    },
    "email": {
        "en": "That doesn't look like an email address. Could you check it?",
        "es": "Eso no parece un correo electrónico. ¿Podrías revisarlo?",
        "fr": "Cela ne ressemble pas à une adresse e-mail. Pouvez-vous vérifier ?",
        "de": "Das sieht nicht wie eine E-Mail-Adresse aus. Könnten Sie es prüfen?",
        "pt": "Isso não parece um endereço de e-mail. Pode verificar?",
    },
    "phone": {
        "en": "That doesn't look like a phone number. Could you include the area code?",
        "es": "Eso no parece un número de teléfono. ¿Podrías incluir el prefijo?",
        "fr": "Cela ne ressemble pas à un numéro de téléphone. Avec l'indicatif ?",
        "de": "Das sieht nicht wie eine Telefonnummer aus. Bitte mit Vorwahl.",
        "pt": "Isso não parece um número de telefone. Pode incluir o indicativo?",
    },
    "not_own_contact": {
        "en": "Please share your own number, or type it.",
        "es": "Comparte tu propio número, o escríbelo.",
        "fr": "Partagez votre propre numéro, ou tapez-le.",
        "de": "Bitte teilen Sie Ihre eigene Nummer oder tippen Sie sie ein.",
        "pt": "Partilhe o seu próprio número, ou escreva-o.",
    },
    "url": {
        "en": "That doesn't look like a web address.",
        "es": "Eso no parece una dirección web.",
        "fr": "Cela ne ressemble pas à une adresse web.",
        "de": "Das sieht nicht wie eine Webadresse aus.",
        "pt": "Isso não parece um endereço web.",
    },
    "number": {
        "en": "Could you answer with a number?",
        "es": "¿Podrías responder con un número?",
        "fr": "Pouvez-vous répondre avec un nombre ?",
        "de": "Könnten Sie mit einer Zahl antworten?",
        "pt": "Pode responder com um número?",
    },
    "integer": {
        "en": "Could you answer with a whole number?",
        "es": "¿Podrías responder con un número entero?",
        "fr": "Pouvez-vous répondre avec un nombre entier ?",
        "de": "Könnten Sie mit einer ganzen Zahl antworten?",
        "pt": "Pode responder com um número inteiro?",
    },
    "too_small": {
        "en": "That's below what we can work with: at least {min}, please.",
        "es": "Es menos de lo posible: al menos {min}, por favor.",
        "fr": "C'est en dessous du minimum : au moins {min}, s'il vous plaît.",
        "de": "Das ist zu wenig: bitte mindestens {min}.",
        "pt": "Está abaixo do mínimo: pelo menos {min}, por favor.",
    },
    "too_large": {
        "en": "That's above what we can work with: at most {max}, please.",
        "es": "Es más de lo posible: como máximo {max}, por favor.",
        "fr": "C'est au-dessus du maximum : {max} au plus, s'il vous plaît.",
        "de": "Das ist zu viel: bitte höchstens {max}.",
        "pt": "Está acima do máximo: no máximo {max}, por favor.",
    },
    "choice": {
        "en": "Sorry, I didn't catch that. Please pick one of the options (or type its number).",
        "es": "Perdona, no lo entendí. Elige una de las opciones (puedes escribir su número).",
        "fr": "Désolé, je n'ai pas compris. Choisissez une option (tapez son numéro).",
        "de": "Entschuldigung, das habe ich nicht verstanden. Bitte wählen Sie eine Option "
        "(gern auch ihre Nummer).",
        "pt": "Desculpe, não percebi. Escolha uma das opções (pode escrever o número).",
    },
    "ambiguous": {
        "en": "Did you mean {options}? Please pick one.",
        "es": "¿Te refieres a {options}? Elige una, por favor.",
        "fr": "Vouliez-vous dire {options} ? Choisissez-en une.",
        "de": "Meinten Sie {options}? Bitte wählen Sie eine Option.",
        "pt": "Quis dizer {options}? Escolha uma, por favor.",
    },
    "too_few": {
        "en": "Please pick at least {min}.",
        "es": "Elige al menos {min}, por favor.",
        "fr": "Choisissez-en au moins {min}.",
        "de": "Bitte wählen Sie mindestens {min}.",
        "pt": "Escolha pelo menos {min}, por favor.",
    },
    "too_many": {
        "en": "Please pick at most {max}.",
        "es": "Elige como máximo {max}, por favor.",
        "fr": "Choisissez-en au plus {max}.",
        "de": "Bitte wählen Sie höchstens {max}.",
        "pt": "Escolha no máximo {max}, por favor.",
    },
    "yes_no": {
        "en": "Please answer yes or no.",
        "es": "Responde sí o no, por favor.",
        "fr": "Répondez par oui ou par non, s'il vous plaît.",
        "de": "Bitte antworten Sie mit ja oder nein.",
        "pt": "Responda sim ou não, por favor.",
    },
    "date": {
        "en": "Sorry, I didn't understand that date. For example: “next Friday” or “12 March”.",
        "es": "No entendí esa fecha. Por ejemplo: «el viernes» o «12 de marzo».",
        "fr": "Je n'ai pas compris cette date. Par exemple : « vendredi prochain ».",
        "de": "Dieses Datum habe ich nicht verstanden. Zum Beispiel: „nächsten Freitag“.",
        "pt": "Não percebi essa data. Por exemplo: «sexta-feira» ou «12 de março».",
    },
    "datetime": {
        "en": "Sorry, I didn't understand that. For example: “Friday at 3pm” or “tomorrow 10:30”.",
        "es": "No lo entendí. Por ejemplo: «el viernes a las 15:00» o «mañana a las 10:30».",
        "fr": "Je n'ai pas compris. Par exemple : « vendredi à 15h » ou « demain 10h30 ».",
        "de": "Das habe ich nicht verstanden. Zum Beispiel: „Freitag um 15 Uhr“.",
        "pt": "Não percebi. Por exemplo: «sexta às 15h» ou «amanhã às 10:30».",
    },
    "time_missing": {
        "en": "What time suits you? For example: “Friday at 3pm”.",
        "es": "¿A qué hora te viene bien? Por ejemplo: «el viernes a las 15:00».",
        "fr": "À quelle heure ? Par exemple : « vendredi à 15h ».",
        "de": "Um wie viel Uhr? Zum Beispiel: „Freitag um 15 Uhr“.",
        "pt": "A que horas? Por exemplo: «sexta às 15h».",
    },
    "past": {
        "en": "That's in the past. Could you pick a later time?",
        "es": "Eso ya pasó. ¿Podrías elegir un momento posterior?",
        "fr": "C'est déjà passé. Pouvez-vous choisir plus tard ?",
        "de": "Das liegt in der Vergangenheit. Bitte wählen Sie einen späteren Zeitpunkt.",
        "pt": "Isso já passou. Pode escolher uma data posterior?",
    },
    "too_far": {
        "en": "That's too far ahead: within the next {days} days, please.",
        "es": "Es demasiado lejos: dentro de los próximos {days} días, por favor.",
        "fr": "C'est trop loin : dans les {days} prochains jours, s'il vous plaît.",
        "de": "Das ist zu weit weg: bitte innerhalb der nächsten {days} Tage.",
        "pt": "É demasiado longe: nos próximos {days} dias, por favor.",
    },
    "weekday": {
        "en": "We're only open {days}. Could you pick another day?",
        "es": "Solo abrimos {days}. ¿Podrías elegir otro día?",
        "fr": "Nous sommes ouverts seulement {days}. Un autre jour ?",
        "de": "Wir haben nur {days} geöffnet. Bitte wählen Sie einen anderen Tag.",
        "pt": "Só abrimos {days}. Pode escolher outro dia?",
    },
    "hours": {
        "en": "We're available between {start} and {end}. Could you pick a time then?",
        "es": "Estamos disponibles entre las {start} y las {end}. ¿Otra hora?",
        "fr": "Nous sommes disponibles entre {start} et {end}. Une autre heure ?",
        "de": "Wir sind zwischen {start} und {end} erreichbar. Bitte eine andere Uhrzeit.",
        "pt": "Estamos disponíveis entre as {start} e as {end}. Outra hora?",
    },
    "consent": {
        "en": "Please answer yes to agree, or no.",
        "es": "Responde sí para aceptar, o no.",
        "fr": "Répondez oui pour accepter, ou non.",
        "de": "Antworten Sie mit ja, um zuzustimmen, oder mit nein.",
        "pt": "Responda sim para aceitar, ou não.",
    },
    # Conversation texts.
    "confirm_prefill": {
        "en": "Is {value} still right?",
        "es": "¿Sigue siendo correcto {value}?",
        "fr": "{value} est-il toujours correct ?",
        "de": "Ist {value} noch richtig?",
        "pt": "{value} ainda está correto?",
    },
    "help": {
        "en": "Just answer the question below. Type “agent” to talk to a person, or STOP to "
        "opt out.",
        "es": "Responde a la pregunta. Escribe «agente» para hablar con una persona, o STOP "
        "para darte de baja.",
        "fr": "Répondez à la question. Tapez « agent » pour parler à une personne, ou STOP.",
        "de": "Beantworten Sie einfach die Frage. „Mitarbeiter“ für eine Person, STOP zum "
        "Abmelden.",
        "pt": "Responda à pergunta. Escreva «agente» para falar com uma pessoa, ou STOP.",
    },
    "handoff": {
        "en": "Sure, I'm passing you to a member of our team. They'll reply here shortly.",
        "es": "Claro, te paso con una persona de nuestro equipo. Te responderá aquí en breve.",
        "fr": "Bien sûr, je vous passe un membre de notre équipe. Réponse ici sous peu.",
        "de": "Gern, ich verbinde Sie mit unserem Team. Sie erhalten hier gleich eine Antwort.",
        "pt": "Claro, vou passar a um membro da nossa equipa. Responderá aqui em breve.",
    },
    "handoff_stuck": {
        "en": "Let me get a member of our team to help with this. They'll reply here shortly.",
        "es": "Le pido a una persona de nuestro equipo que te ayude. Te responderá aquí en breve.",
        "fr": "Je demande à un membre de notre équipe de vous aider. Réponse ici sous peu.",
        "de": "Ich bitte jemanden aus unserem Team um Hilfe. Sie erhalten hier bald eine Antwort.",
        "pt": "Vou pedir ajuda a um membro da nossa equipa. Responderá aqui em breve.",
    },
    "rep_joined": {
        "en": "You're now chatting with {name} from our team.",
        "es": "Ahora hablas con {name}, de nuestro equipo.",
        "fr": "Vous discutez maintenant avec {name}, de notre équipe.",
        "de": "Sie chatten jetzt mit {name} aus unserem Team.",
        "pt": "Está agora a falar com {name}, da nossa equipa.",
    },
    "handoff_timeout": {
        "en": "Sorry, everyone on our team is busy right now.",
        "es": "Lo siento, ahora mismo todo nuestro equipo está ocupado.",
        "fr": "Désolé, toute notre équipe est occupée pour le moment.",
        "de": "Entschuldigung, unser Team ist gerade voll beschäftigt.",
        "pt": "Lamentamos, toda a nossa equipa está ocupada neste momento.",
    },
    "callback_ask": {
        "en": "When would be a good time for us to call you back?",
        "es": "¿Cuándo te viene bien que te llamemos?",
        "fr": "Quand pouvons-nous vous rappeler ?",
        "de": "Wann dürfen wir Sie zurückrufen?",
        "pt": "Quando lhe dá jeito que lhe liguemos?",
    },
    "callback_noted": {
        "en": "Thanks, we'll call you then.",
        "es": "Gracias, te llamaremos entonces.",
        "fr": "Merci, nous vous appellerons à ce moment-là.",
        "de": "Danke, wir rufen Sie dann an.",
        "pt": "Obrigado, ligamos-lhe nessa altura.",
    },
    "recap": {
        "en": "So far: {answers}.",
        "es": "Hasta ahora: {answers}.",
        "fr": "Jusqu'ici : {answers}.",
        "de": "Bisher: {answers}.",
        "pt": "Até agora: {answers}.",
    },
    "resume": {
        "en": "Thanks for waiting! Let's pick up where we left off.",
        "es": "¡Gracias por esperar! Sigamos donde lo dejamos.",
        "fr": "Merci d'avoir patienté ! Reprenons où nous en étions.",
        "de": "Danke fürs Warten! Machen wir dort weiter, wo wir aufgehört haben.",
        "pt": "Obrigado por esperar! Vamos continuar onde ficámos.",
    },
    "reminder": {
        "en": "Still there? Just a couple of questions left.",
        "es": "¿Sigues ahí? Solo quedan un par de preguntas.",
        "fr": "Toujours là ? Plus que quelques questions.",
        "de": "Noch da? Nur noch ein paar Fragen.",
        "pt": "Ainda aí? Faltam só umas perguntas.",
    },
    "welcome_back": {
        "en": "Welcome back!",
        "es": "¡Hola de nuevo!",
        "fr": "Re-bonjour !",
        "de": "Willkommen zurück!",
        "pt": "Bem-vindo de volta!",
    },
    "opted_out": {
        "en": "You're unsubscribed and won't hear from us again here.",
        "es": "Te has dado de baja y no volverás a recibir mensajes nuestros aquí.",
        "fr": "Vous êtes désinscrit et ne recevrez plus de messages ici.",
        "de": "Sie sind abgemeldet und erhalten hier keine Nachrichten mehr.",
        "pt": "Cancelou a subscrição e não receberá mais mensagens aqui.",
    },
    "opted_in": {
        "en": "Welcome back! You'll hear from us here again.",
        "es": "¡Bienvenido de nuevo! Volverás a recibir nuestros mensajes aquí.",
        "fr": "Bon retour ! Vous recevrez de nouveau nos messages ici.",
        "de": "Willkommen zurück! Sie erhalten hier wieder Nachrichten von uns.",
        "pt": "Bem-vindo de volta! Voltará a receber as nossas mensagens aqui.",
    },
    "completed": {
        "en": "Thanks, we have everything we need. Someone from our team will be in touch.",
        "es": "Gracias, ya tenemos todo. Alguien de nuestro equipo se pondrá en contacto.",
        "fr": "Merci, nous avons tout. Quelqu'un de notre équipe vous contactera.",
        "de": "Danke, wir haben alles. Jemand aus unserem Team meldet sich.",
        "pt": "Obrigado, temos tudo. Alguém da nossa equipa entrará em contacto.",
    },
    # Appointments (bot/appointments.py).
    "appointment": {
        "en": "Please pick one of the times, or tell me a day and time that suits you "
        "(e.g. “tomorrow after 5”).",
        "es": "Elige una de las horas, o dime qué día y hora te viene bien "
        "(p. ej. «mañana después de las 5»).",
        "fr": "Choisissez un des horaires, ou dites-moi le jour et l'heure qui vous "
        "conviennent (p. ex. « demain après 17h »).",
        "de": "Bitte wählen Sie eine der Zeiten, oder nennen Sie Tag und Uhrzeit "
        "(z. B. „morgen nach 17 Uhr“).",
        "pt": "Escolha um dos horários, ou diga-me o dia e a hora que lhe convêm "
        "(p. ex. «amanhã depois das 5»).",
    },
    "appointment_location": {
        "en": "Where would you like to come?",
        "es": "¿Dónde prefieres venir?",
        "fr": "Où souhaitez-vous venir ?",
        "de": "Wo möchten Sie vorbeikommen?",
        "pt": "Onde prefere vir?",
    },
    "appointment_more": {
        "en": "Other times",
        "es": "Otras horas",
        "fr": "Autres horaires",
        "de": "Andere Zeiten",
        "pt": "Outros horários",
    },
    "appointment_other_place": {
        "en": "Another place",
        "es": "Otro lugar",
        "fr": "Un autre lieu",
        "de": "Anderer Ort",
        "pt": "Outro local",
    },
    "appointment_taken": {
        "en": "Sorry, that time has just been taken.",
        "es": "Lo siento, esa hora se acaba de ocupar.",
        "fr": "Désolé, cet horaire vient d'être pris.",
        "de": "Entschuldigung, diese Zeit wurde gerade vergeben.",
        "pt": "Lamentamos, esse horário acabou de ser ocupado.",
    },
    "appointment_matches": {
        "en": "Here's what we have then:",
        "es": "Esto es lo que tenemos:",
        "fr": "Voici ce que nous avons :",
        "de": "Das haben wir dann frei:",
        "pt": "Isto é o que temos:",
    },
    "appointment_nearest": {
        "en": "Nothing is free then; these are the nearest free times:",
        "es": "No hay nada libre entonces; estas son las horas libres más cercanas:",
        "fr": "Rien de libre à ce moment-là ; voici les horaires libres les plus proches :",
        "de": "Dann ist nichts frei; das sind die nächsten freien Zeiten:",
        "pt": "Não há nada livre nessa altura; estes são os horários livres mais próximos:",
    },
    "appointment_wrapped": {
        "en": "There are no later times; here are the first ones again:",
        "es": "No hay horas más tarde; estas son de nuevo las primeras:",
        "fr": "Il n'y a pas d'horaires plus tard ; revoici les premiers :",
        "de": "Später ist nichts frei; hier noch einmal die ersten Zeiten:",
        "pt": "Não há horários mais tarde; aqui estão de novo os primeiros:",
    },
    "appointment_none": {
        "en": "Sorry, there are no free times at the moment.",
        "es": "Lo siento, ahora mismo no hay horas libres.",
        "fr": "Désolé, il n'y a pas d'horaire libre pour le moment.",
        "de": "Entschuldigung, im Moment sind keine Zeiten frei.",
        "pt": "Lamentamos, de momento não há horários livres.",
    },
    "appointment_booked": {
        "en": "You're booked: {when}, {place}. To change it, type RESCHEDULE; to cancel it, "
        "CANCEL APPOINTMENT.",
        "es": "Reservado: {when}, {place}. Para cambiarlo, escribe REPROGRAMAR; para "
        "cancelarlo, CANCELAR CITA.",
        "fr": "C'est réservé : {when}, {place}. Pour changer, tapez REPORTER ; pour annuler, "
        "ANNULER.",
        "de": "Gebucht: {when}, {place}. Zum Ändern schreiben Sie VERSCHIEBEN, zum Absagen "
        "ABSAGEN.",
        "pt": "Está marcado: {when}, {place}. Para mudar, escreva REAGENDAR; para cancelar, "
        "DESMARCAR.",
    },
    "appointment_link": {
        "en": "Add it to your calendar: {link}",
        "es": "Añádelo a tu calendario: {link}",
        "fr": "Ajoutez-le à votre agenda : {link}",
        "de": "In Ihren Kalender eintragen: {link}",
        "pt": "Adicione ao seu calendário: {link}",
    },
    "appointment_reschedule": {
        "en": "Sure, let's find another time. Your appointment stays until you pick a new one.",
        "es": "Claro, busquemos otra hora. Tu cita se mantiene hasta que elijas otra.",
        "fr": "Bien sûr, trouvons un autre horaire. Votre rendez-vous tient jusqu'au "
        "nouveau choix.",
        "de": "Gern, suchen wir eine andere Zeit. Ihr Termin bleibt, bis Sie einen neuen wählen.",
        "pt": "Claro, vamos encontrar outro horário. A marcação mantém-se até escolher outra.",
    },
    "appointment_cancelled": {
        "en": "Your appointment on {when} is cancelled. Type RESCHEDULE to book another time.",
        "es": "Tu cita del {when} está cancelada. Escribe REPROGRAMAR para reservar otra hora.",
        "fr": "Votre rendez-vous du {when} est annulé. Tapez REPORTER pour en prendre un autre.",
        "de": "Ihr Termin am {when} ist abgesagt. Schreiben Sie VERSCHIEBEN für einen neuen.",
        "pt": "A sua marcação de {when} foi cancelada. Escreva REAGENDAR para marcar outra.",
    },
    "appointment_cancelled_by_us": {
        "en": "We're sorry: your appointment on {when} has been cancelled. Type RESCHEDULE to "
        "pick another time.",
        "es": "Lo sentimos: tu cita del {when} ha sido cancelada. Escribe REPROGRAMAR para "
        "elegir otra hora.",
        "fr": "Nous sommes désolés : votre rendez-vous du {when} a été annulé. Tapez REPORTER "
        "pour en choisir un autre.",
        "de": "Es tut uns leid: Ihr Termin am {when} wurde abgesagt. Schreiben Sie VERSCHIEBEN "
        "für eine andere Zeit.",
        "pt": "Lamentamos: a sua marcação de {when} foi cancelada. Escreva REAGENDAR para "
        "escolher outro horário.",
    },
    "appointment_moved": {
        "en": "Your appointment has been moved to {when}, {place}.",
        "es": "Tu cita se ha cambiado al {when}, {place}.",
        "fr": "Votre rendez-vous a été déplacé au {when}, {place}.",
        "de": "Ihr Termin wurde verlegt auf {when}, {place}.",
        "pt": "A sua marcação passou para {when}, {place}.",
    },
    "appointment_reminder": {
        "en": "Reminder: your appointment is on {when}, {place}. To change it, type RESCHEDULE.",
        "es": "Recordatorio: tu cita es el {when}, {place}. Para cambiarla, escribe REPROGRAMAR.",
        "fr": "Rappel : votre rendez-vous est le {when}, {place}. Pour changer, tapez REPORTER.",
        "de": "Erinnerung: Ihr Termin ist am {when}, {place}. Zum Ändern: VERSCHIEBEN.",
        "pt": "Lembrete: a sua marcação é {when}, {place}. Para mudar, escreva REAGENDAR.",
    },
    "yes": {"en": "Yes", "es": "Sí", "fr": "Oui", "de": "Ja", "pt": "Sim"},
    "no": {"en": "No", "es": "No", "fr": "Non", "de": "Nein", "pt": "Não"},
}


def default_message(key: str, language: str) -> str:
    texts = DEFAULT_MESSAGES[key]
    base = language.split("-", 1)[0]
    return texts.get(language) or texts.get(base) or texts["en"]


class _KeepMissing(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(text: str, params: Mapping[str, object]) -> str:
    """Fill `{name}` placeholders; leaves unknown ones as they are (never raises)."""
    if "{" not in text:
        return text
    try:
        return text.format_map(_KeepMissing(params))
    except (ValueError, IndexError, AttributeError, KeyError):
        return text
