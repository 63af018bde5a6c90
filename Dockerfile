FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 BUSREVIEW_SYSTEM_PYTHON=1
WORKDIR /app
# tesseract and its English data: the burned-in text check of DICOM imports (annotator/redaction.py)
RUN apt-get update && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN DATABASE_URL=postgres://unused/unused python manage.py collectstatic --noinput
EXPOSE 8000
# The same command as outside Docker: install-if-needed, migrate, (demo), gunicorn.
CMD ["bash", "scripts/run"]
