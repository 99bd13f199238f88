from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

# Demo-only accounts for a local machine; printed so a new user can sign in at once.
DEMO_ACCOUNTS = (
    ("candidate", "practice-interview-42", False),
    ("interviewer", "observe-interview-42", True),
    ("admin", "curate-interview-42", True),
)


class Command(BaseCommand):
    help = "Creates the demo candidate and interviewer accounts (idempotent) and prints them."

    def handle(self, *args: object, **options: object) -> None:
        user_model = get_user_model()
        for username, password, is_staff in DEMO_ACCOUNTS:
            user, created = user_model.objects.get_or_create(username=username)
            if created or not user.check_password(password):
                user.set_password(password)
            user.is_staff = is_staff
            user.is_superuser = username == "admin"
            user.save()
            role = "admin" if user.is_superuser else "interviewer (staff)" if is_staff else "candidate"
            self.stdout.write(f"demo {role}: username {username!r}, password {password!r}")
