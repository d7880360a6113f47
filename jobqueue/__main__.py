from jobqueue.cli import run

run()
