FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 BUSREVIEW_SYSTEM_PYTHON=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN DATABASE_URL=postgres://unused/unused python manage.py collectstatic --noinput
EXPOSE 8000
# The same command as outside Docker: install-if-needed, migrate, (demo), gunicorn.
CMD ["bash", "scripts/run"]
