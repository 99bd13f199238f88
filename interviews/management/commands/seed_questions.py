from django.core.management.base import BaseCommand, CommandError

from interviews.seeding import SeedError, load_files, seed_questions


class Command(BaseCommand):
    help = "Loads the question bank from interviews/seed/questions/*.yaml (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
        try:
            questions = load_files()
        except SeedError as error:
            raise CommandError("the question bank is invalid; nothing was loaded:\n" + str(error)) from error
        result = seed_questions(questions)
        self.stdout.write(
            f"questions: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged, {result.new_rubric_versions} new rubric versions"
        )
