"""A small written corpus with known answers: target passages, paraphrased questions, and distractors.

The questions avoid the passages' key words where they can, so only meaning (not word overlap) finds
the right passage first; the distractors share the corpus's vocabulary (teams, servers, schedules).
"""

from __future__ import annotations

TARGETS: list[tuple[str, str, str]] = [
    # (key, passage, paraphrased question)
    (
        "backup",
        "Nightly backups of the production database start at 02:30 and are copied to the "
        "object store in Frankfurt, where they are kept for 35 days.",
        "when does the prod DB get saved each night and how long do we keep the copies?",
    ),
    (
        "vpn",
        "To reach the office network from home, install WireGuard and import the profile that the "
        "IT desk emails you; the tunnel only routes 10.20.0.0/16.",
        "how do I connect to the company LAN while working remotely?",
    ),
    (
        "parking",
        "Visitors park on level minus two of the garage; the gate opens with the code the "
        "receptionist gives them on arrival.",
        "where can our guests park their car?",
    ),
    (
        "coffee",
        "The espresso machine on the third floor is descaled every Friday afternoon, so it is "
        "out of service between 3 and 4 pm.",
        "why can't I get a coffee upstairs late on Fridays?",
    ),
    (
        "oncall",
        "The on-call engineer is paged by Opsgenie; an unanswered page escalates to the team "
        "lead after fifteen minutes.",
        "who gets paged when the on-call person does not answer?",
    ),
    (
        "expenses",
        "Travel expenses are reimbursed within ten working days once the receipts are "
        "uploaded to the finance portal.",
        "how quickly do I get my money back for a business trip?",
    ),
    (
        "fire",
        "In case of a fire alarm, leave by the stairs, never the lifts, and gather at the "
        "assembly point by the bicycle shelter.",
        "what is the evacuation procedure if the smoke detectors go off?",
    ),
    (
        "release",
        "Mobile app releases go out every second Tuesday after the QA team signs off the release candidate.",
        "how often do we ship new versions of the phone application?",
    ),
    (
        "password",
        "Passwords must be rotated every 90 days and may not reuse any of the last five.",
        "how long can I keep the same login secret?",
    ),
    (
        "holidays",
        "Employees receive 28 days of paid annual leave, plus public holidays of the state they work in.",
        "how much vacation do staff get per year?",
    ),
    (
        "printer",
        "The colour printer near the kitchen needs a badge tap before it releases a job.",
        "my print job is stuck in the queue, what do I need to do at the device?",
    ),
    (
        "wifi",
        "The guest wireless network is called Lobby-Guest and its passphrase changes every "
        "Monday; it is printed on the card at reception.",
        "what is the wifi password for visitors?",
    ),
    (
        "standup",
        "The platform team holds its daily standup at 9:45 in the Orion meeting room.",
        "when and where does the infrastructure group meet each morning?",
    ),
    (
        "deploy",
        "Production deploys are frozen from December 20th until January 3rd; only hotfixes "
        "approved by the CTO may ship.",
        "can we deploy to production over the Christmas holidays?",
    ),
    (
        "laptop",
        "A broken laptop is swapped for a loaner at the IT desk on the same day if it is "
        "reported before noon.",
        "my notebook computer died, how fast can I get a replacement?",
    ),
    (
        "pets",
        "Dogs are welcome in the office on Wednesdays as long as they stay out of the kitchen.",
        "can I bring my puppy to work?",
    ),
    (
        "budget",
        "Each team may spend up to 500 euros per quarter on training and books without asking for approval.",
        "how much can we spend on courses without sign-off?",
    ),
    (
        "logs",
        "Application logs are shipped to Loki and retained for fourteen days; audit logs are "
        "kept for seven years.",
        "for how long are service log lines stored?",
    ),
    (
        "bikes",
        "Bicycles can be charged and repaired in the basement workshop next to the showers.",
        "is there somewhere I can fix my e-bike?",
    ),
    (
        "mentor",
        "Every new hire is paired with a buddy from another team for their first three months.",
        "do newcomers get someone to help them settle in?",
    ),
    (
        "keys",
        "Lost office keys must be reported to facilities immediately; replacing the lock costs "
        "the department 300 euros.",
        "I misplaced my door key, what should I do?",
    ),
    (
        "ssl",
        "TLS certificates are renewed automatically by cert-manager thirty days before they expire.",
        "do we have to manually refresh our HTTPS certs?",
    ),
    (
        "lunch",
        "The canteen serves lunch from 11:30 to 14:00 and offers a vegan dish every day.",
        "what time can I eat in the cafeteria, and is there a plant-based option?",
    ),
    (
        "cluster",
        "The Kubernetes cluster autoscaler adds nodes when pods stay pending for more than two minutes.",
        "what happens when pods cannot be scheduled because the cluster is full?",
    ),
    (
        "sick",
        "If you are ill, tell your manager before 10 am; from the fourth day a doctor's note is required.",
        "what do I need to do when I'm unwell and can't come in?",
    ),
]

_TEAMS = [
    "platform",
    "data",
    "mobile",
    "web",
    "security",
    "finance",
    "sales",
    "support",
    "design",
    "research",
    "marketing",
    "legal",
]
_TOPICS = [
    "keeps its roadmap in the shared wiki and reviews it at the start of each quarter",
    "uses a kanban board with a work-in-progress limit of five tickets",
    "publishes a newsletter on the first Monday of the month",
    "rotates the meeting facilitator every sprint",
    "runs a retrospective at the end of each two-week iteration",
    "stores its design documents in the architecture repository",
    "answers internal questions in its chat channel within one business day",
    "tracks its objectives in the company OKR tool",
    "holds office hours on Thursday afternoons for other departments",
    "documents its runbooks next to the code they describe",
    "labels urgent tickets with a red priority flag",
    "organises a hack day twice a year",
    "asks for peer review on every change before it is merged",
    "keeps a glossary of its domain terms in the handbook",
    "measures customer satisfaction with a short survey after each request",
    "plans capacity for the next quarter six weeks in advance",
    "shares a weekly summary of incidents with leadership",
    "keeps meeting notes in a shared folder named after the date",
    "onboards contractors with a checklist maintained by its lead",
    "uses feature flags to roll out changes gradually",
    "books the large conference room for its monthly all-hands",
    "archives finished projects after a short lessons-learned write-up",
    "welcomes interns every summer for a ten-week programme",
]


def distractors() -> list[str]:
    """About 275 plausible passages that answer none of the questions."""
    return [f"The {team} team {topic}." for team in _TEAMS for topic in _TOPICS][:275]
